"""Evals: regression suites for Dify apps; the body is ui.evals."""
from ui import require_shell
from ui.evals import render

require_shell(__file__)  # a deep link runs this page through app.py, with the sidebar
render()
