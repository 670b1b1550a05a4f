"""Which runner a name means: ``Lab(runner='process')`` and the run process both build it here."""

from __future__ import annotations

from typing import Any

from .base import Runner

RUNNERS = ("process", "thread", "serial", "ray")


def make_runner(
    runner: str | Runner,
    max_workers: int,
    requested: int | None = None,
    options: dict[str, Any] | None = None,
) -> Runner:
    """The runner called ``runner`` (or ``runner`` itself, already a ``Runner``).

    ``requested`` is the ``max_workers`` the user gave, if any: Ray uses only
    that, since this machine's CPU count means nothing on a cluster.
    ``options``: a runner's ``detached_options()``, to build it again in a run process.
    """
    if isinstance(runner, Runner):
        return runner
    if runner == "process":
        from .process import ProcessRunner

        return ProcessRunner(max_workers)
    if runner == "thread":
        from .local import ThreadRunner

        return ThreadRunner(max_workers)
    if runner == "serial":
        from .local import SerialRunner

        return SerialRunner()
    if runner == "ray":
        from .ray import RayRunner

        return RayRunner(**options) if options else RayRunner(max_workers=requested)
    raise ValueError(f"runner must be one of {RUNNERS} or a Runner, not {runner!r}")
