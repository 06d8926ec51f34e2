"""Dify Console library: everything the pages, CLI, notebooks and tests share. Never imports streamlit."""
