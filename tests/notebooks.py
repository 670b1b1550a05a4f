"""Execute a small notebook on a real kernel (nbclient), as JupyterLab would."""

from __future__ import annotations

from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient


def run_notebook(
    cells: list[str], folder: Path, specs: KernelSpecManager, timeout: int = 180
) -> nbformat.NotebookNode:
    """A notebook of these code cells, executed in ``folder``; its outputs filled in."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(
        notebook,
        km=KernelManager(kernel_name="python3", kernel_spec_manager=specs),
        timeout=timeout,
        resources={"metadata": {"path": str(folder)}},
    ).execute()
    return notebook
