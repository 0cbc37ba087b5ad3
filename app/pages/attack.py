import streamlit as st

st.title("attack")
