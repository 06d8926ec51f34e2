"""Playground: talk to the chosen Dify app with streaming, see what each answer took and cost,
compare two apps or two input variants side by side, and run a batch of inputs.

A dispatcher: the widgets are in ui/playground/ (page.py lays them out), the logic in lib/playground/.
"""
from ui import require_shell
from ui.playground.page import playground_page

require_shell(__file__)  # a deep link runs this page through app.py, with the sidebar
playground_page()
