"""Playground: streaming chat with the chosen Dify app (placeholder until its issue lands)."""
import streamlit as st

from ui import current_target, require_shell

require_shell(__file__)  # a deep link runs this page through app.py, with the sidebar
target = current_target()

st.title("Playground")
st.markdown(
    "*In progress.* Talk to the chosen Dify app with token-by-token streaming, "
    "and see each message's timing (time to first token, total) and token cost."
)
st.markdown(f"Target: **{target.name}**" if target else "No target selected.")
