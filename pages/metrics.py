"""Metrics: live Prometheus charts of the console's client, the gateway and the simulator, and a PromQL box.

A dispatcher: the page is ui/metrics.py, its queries and panels lib/metrics/.
"""
from ui import require_shell
from ui.metrics import metrics_page

require_shell(__file__)  # a deep link runs this page through app.py, with the sidebar
metrics_page()
