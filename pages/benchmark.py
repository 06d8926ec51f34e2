"""Benchmark: load runs against Dify apps; live progress, honest latency figures, history, comparisons,
reports. The page is ui.bench.benchmark_page; lib.bench does the work."""
from ui import current_target, require_shell
from ui.bench import benchmark_page

require_shell(__file__)  # a deep link runs this page through app.py, with the sidebar
benchmark_page(current_target())
