"""Tracebacks that show the user's code, not labnb's.

A task's traceback is rendered where it failed (a worker, the run process),
and it should read like the one plain Python would print for ``task.run()``:
labnb's own frames (the executor, the capture, the worker loop) are left out,
and code defined in a notebook shows its cell and source lines. IPython keeps
a cell's source in ``linecache`` under a made-up file name, which other
processes do not have, and cloudpickle ships notebook code with its file name
replaced by ``<dynamic-code>``. So the caller sends both along
(``notebook_sources``: the cells' lines, and which function came from which
cell) and the process running the task puts them back (``register_sources``).
"""

from __future__ import annotations

import linecache
import os
import sys
import traceback
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PACKAGE = str(Path(__file__).resolve().parent.parent) + os.sep
SOURCES_LIMIT = 4_000_000
"""Characters of notebook source sent along at most (the newest cells first)."""
DYNAMIC = "<dynamic-code>"
"""The file name cloudpickle gives code it ships by value."""


@dataclass
class Sources:
    lines: dict[str, list[str]] = field(default_factory=dict)
    """Cell file name -> its lines."""
    code: list[tuple[str, int, int, str]] = field(default_factory=list)
    """(qualified name, first line, last line, cell file name) of notebook code."""
    registered: bool = field(default=False, compare=False, repr=False)
    """Already made known in this process (``register_sources``): once per run."""

    def cell_of(self, name: str, line: int) -> str | None:
        for code_name, first, last, file in self.code:
            if code_name == name and first <= line <= last:
                return file
        return None


_REGISTERED = Sources()
"""What ``register_sources`` made known in this process."""


def user_traceback(exc: BaseException) -> str:
    """``exc``'s traceback (its causes and contexts too) without labnb's frames,
    notebook code shown in its cell."""
    shown = traceback.TracebackException.from_exception(exc)
    pending: list[tuple[traceback.TracebackException, BaseException | None]] = [(shown, exc)]
    seen = set()
    while pending:
        current, error = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        walked = traceback.walk_tb(error.__traceback__) if error is not None else iter(())
        codes = [frame.f_code for frame, _ in walked]
        if len(codes) != len(current.stack):  # a cut stack: leave its frames as they are
            codes = []
        frames = [
            _located(frame, codes[i] if codes else None)
            for i, frame in enumerate(current.stack)
            if not frame.filename.startswith(PACKAGE)
        ]
        if frames:  # an error raised by labnb itself keeps its frames
            current.stack = traceback.StackSummary.from_list(frames)
        for chained, cause in (
            (current.__cause__, error.__cause__ if error else None),
            (current.__context__, error.__context__ if error else None),
        ):
            if chained is not None:
                pending.append((chained, cause))
    return "".join(shown.format())


def _located(frame: traceback.FrameSummary, code: types.CodeType | None) -> traceback.FrameSummary:
    if frame.filename != DYNAMIC or frame.lineno is None or code is None:
        return frame
    cell = _REGISTERED.cell_of(_code_name(code), frame.lineno)
    if cell is None:
        return frame
    return traceback.FrameSummary(cell, frame.lineno, frame.name)


def _code_name(code: types.CodeType) -> str:
    return getattr(code, "co_qualname", code.co_name)


def notebook_sources() -> Sources:
    """The cells ``linecache`` holds (code with no file), and which of the
    notebook's functions and task classes' methods come from which cell."""
    sources = Sources()
    size = 0
    # dict.copy is one step for other threads (a traceback being formatted
    # fills the cache); iterating the live dict can fail mid-way.
    for name, entry in reversed(list(linecache.cache.copy().items())):
        if len(entry) != 4 or os.path.exists(name) or not entry[2]:
            continue
        lines = list(entry[2])
        size += sum(map(len, lines))
        if size > SOURCES_LIMIT:
            break
        sources.lines[name] = lines
    if sources.lines:
        main = sys.modules.get("__main__")
        for value in list(vars(main).values()) if main is not None else []:
            for code in _codes(value):
                if code.co_filename in sources.lines:
                    last = max((line for _, _, line in code.co_lines() if line), default=0)
                    sources.code.append(
                        (_code_name(code), code.co_firstlineno, last, code.co_filename)
                    )
    return sources


def _codes(value: Any) -> list[types.CodeType]:
    """The code objects of a function, or of a class's functions, nested ones too."""
    if isinstance(value, type):
        functions = [v for v in vars(value).values() if isinstance(v, types.FunctionType)]
    elif isinstance(value, types.FunctionType):
        functions = [value]
    else:
        return []
    found, stack = [], [f.__code__ for f in functions]
    while stack:
        code = stack.pop()
        found.append(code)
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return found


def register_sources(sources: Sources) -> None:
    """Make ``sources`` (from ``notebook_sources``) what tracebacks here show."""
    if sources.registered:
        return
    sources.registered = True
    for name, lines in sources.lines.items():
        if name not in linecache.cache:
            linecache.cache[name] = (sum(map(len, lines)), None, lines, name)
    known = set(_REGISTERED.code)
    _REGISTERED.code.extend(c for c in sources.code if c not in known)
    _REGISTERED.lines.update(sources.lines)
