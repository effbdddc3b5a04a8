"""The sandbox notebook runs top to bottom, as a user would open it, and shows predictions."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient
from squeezenet_support import ensure_built

CONTRIB_SRC = Path(__file__).resolve().parent.parent / "contrib_src"


def test_sandbox_notebook_executes_and_shows_top5(monkeypatch):
    ensure_built()
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend shows figures
    monkeypatch.setenv("PYTHONPATH", str(CONTRIB_SRC))  # the package; the engine is installed
    notebook = nbformat.read(CONTRIB_SRC / "sandbox.ipynb", as_version=4)
    NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(CONTRIB_SRC)}},
    ).execute()

    text = "\n".join(
        output.get("text", "") + output.get("data", {}).get("text/plain", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert "bagel, beigel" in text
    assert "Arabian camel" in text
    images = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]
    assert len(images) >= 4  # three classified samples and the network's view
