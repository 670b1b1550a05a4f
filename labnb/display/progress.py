"""Plain-text progress for terminals and for notebooks without the widget.

One tqdm bar on stderr, and every line a task prints or logs, prefixed with
the task's short name, as it arrives (``tqdm.write`` keeps the bar intact).
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from ..model.tasks import task_id


def task_label(task: Any) -> str:
    return f"{type(task).__qualname__}:{task_id(task)[:8]}"


class TextProgress:
    def __init__(self, total: int, loaded: int, stream: TextIO | None = None) -> None:
        from tqdm import tqdm  # here, not at import: workers never need it

        # Bound now: while tasks run in this process, sys.stderr routes to their capture.
        self._stream = stream or sys.stderr
        self._bar = tqdm(total=total, file=self._stream, unit="task", desc="labnb", leave=True)
        if loaded:
            self._bar.set_postfix_str(f"{loaded} loaded from cache", refresh=False)
        self._partial: dict[str, str] = {}

    def output(self, task: Any, text: str) -> None:
        key = task_id(task)
        lines = (self._partial.pop(key, "") + text).split("\n")
        if lines[-1]:
            self._partial[key] = lines[-1]
        for line in lines[:-1]:
            self._write(task, line)

    def finished(self, task: Any) -> None:
        rest = self._partial.pop(task_id(task), "")
        if rest:
            self._write(task, rest)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()

    def _write(self, task: Any, line: str) -> None:
        self._bar.write(f"[{task_label(task)}] {line}", file=self._stream)
