"""What labnb needs to know about the Jupyter kernel it may be running in."""

from __future__ import annotations

from typing import Any


def in_kernel() -> bool:
    """Whether we run inside a Jupyter kernel, where widgets can be displayed."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class _KernelActivity:
    """Whether a notebook cell is executing, from IPython's own cell events.

    Clicks wait while a cell runs; the widgets show this so that a user can
    tell "your click waits" from "your click was lost".
    """

    def __init__(self) -> None:
        self.busy = False
        self._watched: Any = None

    def watch(self) -> None:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is None or shell is self._watched:
            return
        shell.events.register("pre_run_cell", self._pre)
        shell.events.register("post_run_cell", self._post)
        self._watched = shell
        self.busy = True  # we are being called from a running cell

    def _pre(self, *_: Any) -> None:
        self.busy = True

    def _post(self, *_: Any) -> None:
        self.busy = False


activity = _KernelActivity()
