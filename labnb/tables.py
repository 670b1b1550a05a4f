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
LOGGED_PREFIXES = ("params.", "metrics.", "mlflow_run_id")


def logged_columns(entry: Entry) -> dict[str, Any]:
    """What the task logged, as mlflow's search_runs names it: ``params.X``, ``metrics.Y``
    (the last value logged) and the mlflow run id."""
    columns: dict[str, Any] = {}
    tracking = entry.get("tracking") or {}
    for name, value in tracking.get("params", {}).items():
        columns[f"params.{name}"] = value
    for name, value, _, _ in tracking.get("metrics", []):
        columns[f"metrics.{name}"] = value
    if entry.get("mlflow_run_id"):
        columns["mlflow_run_id"] = entry["mlflow_run_id"]
    return columns


def metrics_table(entries: list[tuple[str, Entry]]) -> pd.DataFrame:
    """Every logged metric value in long form: one row per (task, metric, step)."""
    rows = []
    for key, entry in entries:
        params = {name: display_value(value) for name, value in entry["params"].items()}
        for name, value, step, when in (entry.get("tracking") or {}).get("metrics", []):
            rows.append(
                {
                    "type": entry["type"],
                    "id": key,
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
        row.update(logged_columns(entry))
        rows.append(row)
    params = [name for name in param_columns if name not in FIXED_COLUMNS]
    logged = sorted({key for row in rows for key in row if key.startswith(LOGGED_PREFIXES)})
    frame = pd.DataFrame(rows, columns=FIXED_COLUMNS + params + TIMING_COLUMNS + logged)
    # Nullable dtypes: an int parameter missing for another task type stays an int.
    frame[params] = frame[params].convert_dtypes()
    for column in ("started", "finished"):
        frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
    return frame.sort_values("started", kind="stable", ignore_index=True)
