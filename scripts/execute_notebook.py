"""Execute a notebook in place of a person (headless, with nbclient) and say where its results are.

The executed copy is written next to the original as ``<name>.executed.ipynb``
(git-ignored), and every labnb storage directory the notebook created is listed
with how many results it holds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbclient
import nbformat

import labnb
from labnb.storage import MARKER


def main(path: str) -> None:
    notebook_path = Path(path).resolve()
    notebook = nbformat.read(notebook_path, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=600, resources={"metadata": {"path": str(notebook_path.parent)}}
    )
    client.execute()
    executed = notebook_path.with_suffix(".executed.ipynb")
    nbformat.write(notebook, executed)
    print(f"ran {notebook_path.name}; the executed notebook is {executed}")
    for marker in sorted(notebook_path.parent.glob(f"*/{MARKER}")):
        lab = labnb.Lab(storage=marker.parent, runner="serial")
        print(f"  {len(lab.cache_table())} cached results in {marker.parent}")


if __name__ == "__main__":
    main(*sys.argv[1:])
