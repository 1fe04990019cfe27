"""The explorer app: ``streamlit run explorer [-- --store DIR]``."""

import streamlit as st

st.set_page_config(page_title="LangSwarm Explorer", layout="wide")
st.title("LangSwarm Observability Explorer")
st.write("Pages arrive with the explorer issue.")
