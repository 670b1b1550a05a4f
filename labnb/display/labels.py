"""How a task and its parameters read in the widgets: as the user wrote them.

A task's ``repr`` shows what labnb made of its parameters (``frozendict``,
enum members as ``<Colour.RED: 1>``); a label shows ``config={'depth': 3}``
and ``colour=Colour.RED``. The cache browser's cells come from the catalog,
where a dict or list parameter is JSON text: ``stored_text`` turns that back
into the same spelling.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from typing import Any

from ..model.tasks import is_task, meta_of

LABEL_LIMIT = 160
"""Characters of a run view's label at most (the browser truncates further, with the
whole label on hover)."""


def task_label(task: Any, limit: int = LABEL_LIMIT) -> str:
    """``Fit(model='svm', config={'depth': 3})``: a task as it would be written."""
    text = _task_text(task)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def value_text(value: Any) -> str:
    """A parameter value as Python source would spell it (dicts as dicts, enums by name)."""
    if is_task(value):
        return _task_text(value)
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, Mapping):
        items = ", ".join(f"{value_text(key)}: {value_text(item)}" for key, item in value.items())
        return "{" + items + "}"
    if isinstance(value, (list, tuple)):
        # labnb keeps a list parameter as a tuple; it was most likely written as a
        # list, and the cache browser (from JSON) shows it so too.
        return "[" + ", ".join(value_text(item) for item in value) + "]"
    if isinstance(value, float):
        return f"{value:.6g}"
    return repr(value)


def stored_text(value: Any) -> str:
    """A catalog cell as the browser shows it: text as it is, JSON containers as
    Python literals (``{'depth': 3}``), numbers short."""
    if isinstance(value, str):
        if value[:1] in "[{":
            try:
                return value_text(json.loads(value))
            except ValueError:
                return value
        return value
    return value_text(value)


def _task_text(task: Any) -> str:
    try:
        meta = meta_of(task)
    except TypeError:
        return repr(task)
    fields = ", ".join(f"{name}={value_text(getattr(task, name))}" for name in meta.fields)
    return f"{meta.type_name}({fields})"
