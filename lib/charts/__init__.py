"""Pure functions DataFrame -> plotly Figure, shared by the pages and the notebooks.

One module per page's charts (bench.py, metrics.py) so each can grow on its own; import them from
here: `from lib.charts import ...`.
"""
from .bench import *  # noqa: F401,F403  (benchmark charts: lib/charts/bench.py)
