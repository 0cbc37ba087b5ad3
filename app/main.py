"""The workbench app: one page per job, each a thin view over the ``workbench`` library.

Started by ``workbench app [--data-root DIR]``; every path it opens lies under the data root.
"""

import streamlit as st
from common import data_root

st.set_page_config(page_title="workbench", page_icon=":material/science:", layout="wide")

PAGES = [
    st.Page("pages/generate.py", title="Generate", icon=":material/casino:", default=True),
    st.Page("pages/browse.py", title="Browse", icon=":material/grid_view:"),
    st.Page("pages/augmenters.py", title="Augmenters", icon=":material/auto_awesome:"),
    st.Page("pages/attack.py", title="Attack lab", icon=":material/gps_fixed:"),
    st.Page("pages/training.py", title="Training", icon=":material/monitoring:"),
    st.Page("pages/cleaning.py", title="Cleaning", icon=":material/cleaning_services:"),
    st.Page("pages/robustness.py", title="Robustness", icon=":material/shield:"),
]

page = st.navigation(PAGES)
st.sidebar.caption(f"Data root: `{data_root()}`")
page.run()
