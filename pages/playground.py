"""Playground: streaming chat with the chosen Dify app (placeholder until its issue lands)."""
import streamlit as st

target = st.session_state.get("target")

st.title("Playground")
st.markdown(
    "*In progress.* Talk to the chosen Dify app with token-by-token streaming, "
    "and see each message's timing (time to first token, total) and token cost."
)
st.markdown(f"Target: **{target.name}**" if target else "No target selected.")
