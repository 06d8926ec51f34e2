"""The Benchmark page's parts (pages/benchmark.py only calls `benchmark_page`): form (the run form),
live (the running job's panel), results (runs, comparisons, history, deletes, downloads), page (the layout)."""
from ui.bench.page import benchmark_page

__all__ = ["benchmark_page"]
