"""Streamlit helpers shared by app.py and the pages. lib/ never imports streamlit; this package may."""
from ui.shell import require_shell, run_page
from ui.target import current_target

__all__ = ["current_target", "require_shell", "run_page"]
