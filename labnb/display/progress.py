"""Plain-text progress for terminals and for notebooks without the widget.

One tqdm bar on stderr, and the lines tasks print or log, prefixed with the
task's short name, as they arrive (``tqdm.write`` keeps the bar intact).

A terminal is for reading, so the echo is bounded: at most
``ECHO_LINES_PER_SECOND`` lines a second over all tasks, the lines of one
batch of output in one write, and the lines over the budget are counted, not
split or written, then announced once a second ("… N more lines"). Every line
still reaches the task's log (``lab.logs(task)``). Unbounded, a task printing
200 MB took 20 times as long as the same task printing to /dev/null, most of
it in ``tqdm.write`` redrawing the bar line by line.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from ..model.tasks import task_id

ECHO_LINES_PER_SECOND = 200
MAX_ECHO_LINE = 2000
"""Characters of one line echoed (and held while the line is incomplete)."""


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
        self._window = time.monotonic()
        self._echoed = 0
        self._skipped: dict[str, tuple[Any, int]] = {}
        """Lines not echoed in this window, by task id: (task, how many)."""

    def output(self, task: Any, text: str) -> None:
        self._roll_window()
        key = task_id(task)
        text = self._partial.pop(key, "") + text
        room = ECHO_LINES_PER_SECOND - self._echoed
        # At most `room` lines are split off; the rest is only counted.
        parts = text.split("\n", room) if room > 0 else [text]
        rest = parts.pop()
        skipped = rest.count("\n")
        if skipped:
            self._skip(task, skipped)
            rest = rest[rest.rindex("\n") + 1 :]
        if rest:
            self._partial[key] = rest[:MAX_ECHO_LINE]
        self._write(task, parts)

    def finished(self, task: Any) -> None:
        key = task_id(task)
        rest = self._partial.pop(key, "")
        if rest:
            self._write(task, [rest])
        self._announce(self._skipped.pop(key, None))
        self._bar.update(1)

    def close(self) -> None:
        for skipped in list(self._skipped.values()):
            self._announce(skipped)
        self._skipped.clear()
        self._bar.close()

    def _roll_window(self) -> None:
        now = time.monotonic()
        if now - self._window < 1.0:
            return
        self._window, self._echoed = now, 0
        skipped, self._skipped = self._skipped, {}
        for item in skipped.values():
            self._announce(item)

    def _skip(self, task: Any, count: int) -> None:
        key = task_id(task)
        _, before = self._skipped.get(key, (task, 0))
        self._skipped[key] = (task, before + count)

    def _announce(self, skipped: tuple[Any, int] | None) -> None:
        if skipped is not None:
            task, count = skipped
            self._bar.write(
                f"[{task_label(task)}] … {count:,} more line(s) not shown here "
                "(lab.logs(task) has every line)",
                file=self._stream,
            )

    def _write(self, task: Any, lines: list[str]) -> None:
        if not lines:
            return
        self._echoed += len(lines)
        label = f"[{task_label(task)}] "
        self._bar.write(
            "\n".join(label + line[:MAX_ECHO_LINE] for line in lines), file=self._stream
        )
