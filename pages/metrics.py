"""Metrics: a live Prometheus view (placeholder until its issue lands)."""
import streamlit as st

target = st.session_state.get("target")

st.title("Metrics")
st.markdown(
    "*In progress.* A live view of the Prometheus metrics that the client, "
    "the gateway and the simulator export."
)
st.markdown(f"Target: **{target.name}**" if target else "No target selected.")
