"""The index entry: what the catalog knows of one cached task, built in one place.

An ``IndexEntry`` is a frozen dataclass with a typed ``Tracking`` record (what
the task logged). The run loop builds it (``IndexEntry.for_outcome``), the
indexes store it (as JSON, never as a pickle, so reading a storage never runs
code), and everything else reads its attributes.

``from_json`` also reads the dicts labnb 0.1.0 wrote (same keys, fewer of
them), which is all the migration of an fsspec storage's entries needs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import StorageError
from .paths import checked_name

OK, MISSING, DAMAGED = "ok", "missing", "damaged"
"""Payload statuses: found and complete; not found; truncated or not matching its checksum."""
Metric = tuple[str, float, "int | None", float]
"""(name, value, step, unix time) of one ``labnb.log_metric`` call."""


@dataclass(frozen=True)
class StoredFile:
    """A payload a worker wrote: its name under ``results/``, size and checksum."""

    name: str
    size: int
    checksum: str


@dataclass(frozen=True)
class Tracking:
    """What a task logged with ``labnb.log_*`` while it ran."""

    params: dict[str, Any] = field(default_factory=dict)
    metrics: tuple[Metric, ...] = ()
    features: tuple[str, ...] = ()
    artifacts: tuple[str, ...] = ()
    models: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Any) -> Tracking:
        if not isinstance(data, dict):
            return cls()
        return cls(
            params=dict(data.get("params") or {}),
            metrics=tuple(
                (str(name), value, step, when)
                for name, value, step, when in data.get("metrics") or ()
            ),
            features=tuple(data.get("features") or ()),
            artifacts=tuple(data.get("artifacts") or ()),
            models=tuple(data.get("models") or ()),
        )

    def last_metrics(self) -> dict[str, float]:
        """Each metric's last logged value (what mlflow shows as ``metrics.X``)."""
        return {name: value for name, value, _, _ in self.metrics}


@dataclass(frozen=True)
class IndexEntry:
    """One cached task: identity, payload, timings, and what it logged."""

    task_id: str
    type: str
    module: str
    code_version: str | None
    params: dict[str, Any]
    """The stored (JSON) encoding of the task's parameters."""
    format: str
    file: str
    size: int
    checksum: str
    started: float
    finished: float
    mlflow_run_id: str | None = None
    tracking: Tracking = field(default_factory=Tracking)
    artifacts: str | None = None
    """The folder under ``artifacts/`` holding what the task kept (None: nothing)."""
    run_id: str | None = None
    """The labnb run that computed it."""
    status: str = OK
    """The payload as last seen: ``ok``, ``missing`` or ``damaged`` (see ``Catalog.verify``)."""
    config: str | None = None
    """The digest of the config file the task was built from (``Index.read_config``)."""
    code: str | None = None
    """The hash of the code that computed it (``model.code_hash``): a result whose
    type's code has changed since is "stale"."""
    result: float | None = None
    """The result itself when it is a number: a column to sort and filter by."""

    @property
    def duration(self) -> float:
        return self.finished - self.started

    def to_json(self) -> str:
        data = asdict(self)
        del data["task_id"]
        return json.dumps(data, separators=(",", ":"), allow_nan=True)

    @classmethod
    def from_json(cls, task_id: str, data: str | bytes | dict[str, Any]) -> IndexEntry:
        """Parse and check an entry; a malformed one raises ``StorageError``."""
        try:
            raw = json.loads(data) if isinstance(data, (str, bytes)) else data
            artifacts = raw.get("artifacts")
            return cls(
                task_id=task_id,
                type=str(raw["type"]),
                module=str(raw.get("module") or ""),
                code_version=raw.get("code_version"),
                params=dict(raw["params"]),
                format=str(raw["format"]),
                file=checked_name(raw["file"]),
                size=int(raw["size"]),
                checksum=str(raw["checksum"]),
                started=float(raw["started"]),
                finished=float(raw["finished"]),
                mlflow_run_id=raw.get("mlflow_run_id"),
                tracking=Tracking.from_json(raw.get("tracking")),
                artifacts=None if artifacts is None else checked_name(artifacts),
                run_id=raw.get("run_id"),
                status=str(raw.get("status") or OK),
                config=raw.get("config"),
                code=raw.get("code"),
                result=_number(raw.get("result")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StorageError(f"index entry {task_id[:64]!r} is malformed ({exc!r})") from None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
