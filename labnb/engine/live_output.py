"""Bounds on the output a run shows live; a task's log keeps every line.

A task may print hundreds of megabytes. Its log goes to disk as it arrives
(``storage.task_logs``); what displays hold of it (a ``RunState``'s records)
is its last ``OUTPUT_KEPT`` characters, and what a run process records for
its followers in each commit is each task's last ``LIVE_BATCH_CHARS``, after a
line saying how many lines were left out.
"""

from __future__ import annotations

OUTPUT_KEPT = 1_000_000
"""Characters of a task's live output a display holds (its whole log is in the storage)."""
EARLIER = "[labnb] (earlier output is in the task's log)\n"
LIVE_BATCH_CHARS = 1 << 16
"""Characters of one task's output recorded for followers per commit (5 a second)."""


def keep_tail(output: list[str]) -> None:
    """Cut a task's live output (a list of chunks) to its last ``OUTPUT_KEPT``
    characters once it holds twice that: each character is copied about once."""
    if sum(map(len, output)) > 2 * OUTPUT_KEPT:
        kept = "".join(output)[-OUTPUT_KEPT:]
        output[:] = [EARLIER, kept]


class LiveOutput:
    """What tasks printed since the last commit, as followers get it: per task,
    its last ``LIVE_BATCH_CHARS`` or so, after a line counting the lines left out.
    Cut as it arrives, so a flood between two commits is never held whole."""

    def __init__(self) -> None:
        self._chunks: dict[str, list[str]] = {}
        self._sizes: dict[str, int] = {}
        self._left_out: dict[str, int] = {}

    def add(self, key: str, text: str) -> None:
        self._chunks.setdefault(key, []).append(text)
        self._sizes[key] = self._sizes.get(key, 0) + len(text)
        if self._sizes[key] > 2 * LIVE_BATCH_CHARS:
            self._cut(key)

    def take(self) -> list[tuple[str, str]]:
        """``(task id, text)`` for each task that printed since the last ``take``."""
        taken = []
        for key in list(self._chunks):
            if self._sizes[key] > LIVE_BATCH_CHARS:
                self._cut(key)
            left_out = self._left_out.get(key)
            note = f"[labnb] … {left_out} more lines (the task's log has every line)\n"
            taken.append((key, (note if left_out else "") + "".join(self._chunks[key])))
        self._chunks, self._sizes, self._left_out = {}, {}, {}
        return taken

    def _cut(self, key: str) -> None:
        text = "".join(self._chunks[key])
        start = len(text) - LIVE_BATCH_CHARS
        newline = text.find("\n", start)
        cut = newline + 1 if newline >= 0 else start  # one long line: cut it
        self._left_out[key] = self._left_out.get(key, 0) + text.count("\n", 0, cut)
        self._chunks[key], self._sizes[key] = [text[cut:]], len(text) - cut
