"""Index entries as pandas tables, read from the stored encoding.

Working from the stored form means a table never imports or rebuilds task
classes: it works on any storage, even in a process that never defined them.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .storage import Entry

FIXED_COLUMNS = ["type", "id"]
TIMING_COLUMNS = ["started", "finished", "duration_s", "size_bytes"]


def display_value(encoded: Any) -> Any:
    """A parameter as a readable table cell: Enum members as ``Enum.NAME``, tasks as ``Type:id``."""
    if isinstance(encoded, list):
        return tuple(display_value(item) for item in encoded)
    if not isinstance(encoded, dict):
        return encoded
    if "dict" in encoded:
        return {key: display_value(item) for key, item in encoded["dict"].items()}
    if "enum" in encoded:
        return f"{encoded['enum']}.{encoded['name']}"
    return f"{encoded['task']}:{encoded['id'][:8]}"


def cache_table(entries: list[tuple[str, Entry]]) -> pd.DataFrame:
    rows = []
    param_columns: dict[str, None] = {}
    for key, entry in entries:
        row = {"type": entry["type"], "id": key}
        for name, value in entry["params"].items():
            param_columns[name] = None
            row[name] = display_value(value)
        row.update(
            started=entry["started"],
            finished=entry["finished"],
            duration_s=entry["finished"] - entry["started"],
            size_bytes=entry["size"],
        )
        rows.append(row)
    params = [name for name in param_columns if name not in FIXED_COLUMNS]
    frame = pd.DataFrame(rows, columns=FIXED_COLUMNS + params + TIMING_COLUMNS)
    # Nullable dtypes: an int parameter missing for another task type stays an int.
    frame[params] = frame[params].convert_dtypes()
    for column in ("started", "finished"):
        frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
    return frame.sort_values("started", kind="stable", ignore_index=True)
