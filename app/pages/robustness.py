import streamlit as st

st.title("robustness")
