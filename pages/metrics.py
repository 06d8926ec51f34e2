"""Metrics: a live Prometheus view (placeholder until its issue lands)."""
import streamlit as st

from ui import current_target, require_shell

require_shell(__file__)  # a deep link runs this page through app.py, with the sidebar
target = current_target()

st.title("Metrics")
st.markdown(
    "*In progress.* A live view of the Prometheus metrics that the client, "
    "the gateway and the simulator export."
)
st.markdown(f"Target: **{target.name}**" if target else "No target selected.")
