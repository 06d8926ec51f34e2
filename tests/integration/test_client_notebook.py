"""The API tour notebook runs top to bottom (also: pytest --nbmake notebooks/01_api_tour.ipynb)."""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "01_api_tour.ipynb"


def test_api_tour_notebook_executes():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    text = "\n".join(
        out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
    )
    assert "AuthenticationError 401" in text and "attempts: 3" in text and "StreamInterruptedError" in text
    assert "app-sim-chat" not in text  # reprs and errors show app-…chat only
