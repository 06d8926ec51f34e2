"""The latency-analysis notebook runs top to bottom against its own simulator and temporary store."""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "02_latency_analysis.ipynb"


def test_latency_analysis_notebook_executes(monkeypatch):
    monkeypatch.delenv("BENCH_DB", raising=False)  # the notebook makes its own temporary store
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]
    text = "\n".join(out.get("text", "") for out in outputs)
    assert "baseline" in text and "slower model" in text and "TTFT p50 changed by" in text
    figures = [out for out in outputs if "application/vnd.plotly.v1+json" in out.get("data", {})]
    assert len(figures) >= 6  # histogram, ITL, over time, throughput, CDF, percentile bars
