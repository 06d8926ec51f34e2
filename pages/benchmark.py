"""Benchmark: load runs against a Dify app (placeholder until its issue lands)."""
import streamlit as st

from ui import current_target, require_shell

require_shell(__file__)  # a deep link runs this page through app.py, with the sidebar
target = current_target()

st.title("Benchmark")
st.markdown(
    "*In progress.* Load-test the chosen Dify app and chart latency (time to first token, "
    "inter-token, end-to-end), throughput, errors and cost; every run is kept for comparison."
)
st.markdown(f"Target: **{target.name}**" if target else "No target selected.")
