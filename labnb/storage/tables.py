"""Entries as pandas tables in long form (``Lab.metrics``).

Working from the stored form means a table never imports or rebuilds task
classes: it works on any storage, even in a process that never defined them.
``Catalog.table`` (``Lab.cache_table``) reads its wide table straight from SQLite.
"""

from __future__ import annotations

import pandas as pd

from .entry import IndexEntry
from .schema import PARAMS, cell_value


def metrics_table(entries: list[IndexEntry]) -> pd.DataFrame:
    """Every logged metric value in long form: one row per (task, metric, step)."""
    rows = []
    for entry in entries:
        params = {PARAMS + name: cell_value(value) for name, value in entry.params.items()}
        for name, value, step, when in entry.tracking.metrics:
            rows.append(
                {
                    "type": entry.type,
                    "id": entry.task_id,
                    **params,
                    "metric": name,
                    "step": step,
                    "value": value,
                    "time": when,
                }
            )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=["type", "id", "metric", "step", "value", "time"])
    frame["step"] = frame["step"].astype("Int64")
    frame["time"] = pd.to_datetime(frame["time"], unit="s", utc=True)
    return frame
