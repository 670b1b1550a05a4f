"""labtech's ``Lab(runner_backend=...)`` spelled in labnb's runners.

labtech names how worker processes start (``'fork'``, ``'spawn'``,
``'fork-per-task'``) or names ``'thread'`` and ``'serial'``, or takes a backend
object such as ``RayRunnerBackend()``. labnb has one process runner, whose
workers are forked from a forkserver (safe in a Jupyter kernel, unlike a plain
fork of a kernel with threads, and quick to start, unlike spawn), so the three
process names all mean it; the rest map one to one.
"""

from __future__ import annotations

from typing import Any

from .base import Runner

BACKENDS = {
    "fork": "process",
    "spawn": "process",
    "fork-per-task": "process",
    "thread": "thread",
    "serial": "serial",
}


def runner_for(runner: str | Runner, runner_backend: Any) -> str | Runner:
    """The labnb runner meant by ``Lab(runner=..., runner_backend=...)``.

    ``runner_backend`` (labtech's name) wins when given; giving both a
    non-default ``runner`` and a ``runner_backend`` is ambiguous and refused.
    """
    if runner_backend is None:
        return runner
    if runner != "process":
        raise ValueError("give runner= (labnb's name) or runner_backend= (labtech's), not both")
    if isinstance(runner_backend, Runner):
        return runner_backend
    if isinstance(runner_backend, RayRunnerBackend):
        return runner_backend.runner()
    if isinstance(runner_backend, str) and runner_backend in BACKENDS:
        return BACKENDS[runner_backend]
    raise ValueError(
        f"runner_backend must be one of {sorted(BACKENDS)}, a RayRunnerBackend or a "
        f"labnb Runner, not {runner_backend!r}"
    )


class RayRunnerBackend:
    """labtech's Ray backend: ``Lab(runner_backend=RayRunnerBackend())`` runs on ``RayRunner``.

    Ray is initialised the way labtech's documentation shows, by calling
    ``ray.init(...)`` yourself before creating the Lab; otherwise a local Ray
    instance is started. Keyword options go to ``labnb.RayRunner`` (``address``,
    ``max_workers``, ``max_retries``, ``task_options``...).
    """

    def __init__(self, **options: Any) -> None:
        self.options = options

    def __repr__(self) -> str:
        return f"RayRunnerBackend({', '.join(f'{k}={v!r}' for k, v in self.options.items())})"

    def runner(self) -> Runner:
        from .ray import RayRunner

        return RayRunner(**self.options)
