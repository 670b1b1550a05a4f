"""What a ``%%labtask`` cell's version is made of, kept so "why did this rerun?" can be answered.

A cell's ``code_version`` is a digest of its syntax tree and of a fingerprint
of each notebook value it reads. A digest only says *that* something changed.
So each version's parts are also kept in the storage (once per version, beside
the config files, under the digest itself): the cell's source and, per input,
its fingerprint and whether it is code (a function or class: its source
counts) or data. Comparing two versions then names what changed: a short diff
of the source, ``X: content changed``, ``helper: source changed``, an input
that is new or no longer read.
"""

from __future__ import annotations

import difflib
import json
import types
from dataclasses import dataclass, field
from typing import Any

from .code_hash import normalised_source

KEPT_NAME = "%%labtask {name} (cell version)"
"""The name a version is kept under in the storage's config texts."""
DIFF_LINES = 12
"""Changed source lines shown at most: "a short diff"."""


@dataclass(frozen=True)
class CellVersion:
    name: str
    source: str
    inputs: dict[str, tuple[bool, str]] = field(default_factory=dict)
    """Each input the key covers: (is code, fingerprint)."""

    @staticmethod
    def input(value: Any, fingerprint: str) -> tuple[bool, str]:
        return isinstance(value, (types.FunctionType, type, types.MethodType)), fingerprint

    def text(self) -> str:
        return json.dumps(
            {"source": self.source, "inputs": {k: list(v) for k, v in self.inputs.items()}}
        )

    @classmethod
    def from_text(cls, name: str, text: str) -> CellVersion | None:
        """The version kept as ``text``; None when it is not one (damaged, or another kind)."""
        try:
            data = json.loads(text)
            inputs = {k: (bool(code), str(digest)) for k, (code, digest) in data["inputs"].items()}
            return cls(name, str(data["source"]), inputs)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def changes_since(self, older: CellVersion) -> tuple[str, ...]:
        """What differs from ``older``, one line each: the source's changed lines
        (a unified diff without its headers, blank and comment lines left out),
        then each changed input."""
        lines: list[str] = []
        if normalised_source(self.source) != normalised_source(older.source):
            diff = difflib.unified_diff(
                older.source.splitlines(), self.source.splitlines(), lineterm="", n=0
            )
            changed = [
                line
                for line in diff
                if line[:1] in "+-"
                and line[:3] not in ("+++", "---")
                and line[1:].strip()[:1] not in ("", "#")  # blank or comment: nothing
            ]
            lines.append("the cell's source changed:")
            lines.extend(f"  {line}" for line in changed[:DIFF_LINES])
            if len(changed) > DIFF_LINES:
                lines.append(f"  ... {len(changed) - DIFF_LINES} more changed lines")
        for name in sorted(set(self.inputs) | set(older.inputs)):
            now, before = self.inputs.get(name), older.inputs.get(name)
            if before is None:
                lines.append(f"{name}: newly read by the cell")
            elif now is None:
                lines.append(f"{name}: no longer read by the cell")
            elif now[1] != before[1]:
                lines.append(f"{name}: {'source' if now[0] else 'content'} changed")
        return tuple(lines)


def cell_version_of(task_type: type) -> CellVersion | None:
    """The version of a ``%%labtask`` cell's type (``magics.cells.make_task_type``), else None."""
    version = getattr(task_type, "_labnb_cell_version", None)
    return version if isinstance(version, CellVersion) else None
