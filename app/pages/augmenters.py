import streamlit as st

st.title("augmenters")
