"""Task types for the Ray and fsspec-storage tests.

A module of its own (not ``sample_tasks``): Ray workers import task classes by
name, and the test fixture puts this directory on their ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

from sample_tasks import Square, Total  # noqa: F401 - re-exported for the Ray tests

import labnb


@labnb.task
class Blob:
    """A result big enough to live in Ray's shared object store (not inlined)."""

    n: int
    size: int = 400_000

    def run(self) -> bytes:
        return bytes([self.n % 256]) * self.size


@labnb.task
class BlobSizes:
    blobs: list

    def run(self) -> list:
        return [(blob.result[0], len(blob.result)) for blob in self.blobs]


@labnb.task
class Tally:
    """Appends a line to a file in the context's 'tally' directory each time it runs."""

    name: str

    def run(self) -> str:
        with open(Path(self.context["tally"]) / f"{self.name}.txt", "a") as file:
            file.write("ran\n")
        return self.name


@labnb.task
class SlowTally(Tally):
    """``Tally`` after sleeping the context's 'seconds': still running when its submitter dies."""

    def run(self) -> str:
        time.sleep(self.context["seconds"])
        return super().run()


@labnb.task
class Chatty:
    n: int

    def run(self) -> int:
        for line in range(3):
            print(f"task {self.n} line {line}")
        print(f"task {self.n} to stderr", file=sys.stderr)
        labnb.logger.info(f"task {self.n} logged")
        return self.n


@labnb.task
class Waits:
    """Prints, reports progress, then waits for the test to create a flag file."""

    name: str

    def run(self) -> str:
        print(f"{self.name} is waiting")
        for _ in labnb.progress(range(2), desc="waiting"):
            pass
        flag = Path(self.context["flags"]) / self.name
        deadline = time.time() + 20
        while not flag.exists():
            if time.time() > deadline:
                raise TimeoutError("the test never raised the flag")
            time.sleep(0.02)
        print(f"{self.name} saw the flag")
        return self.name


@labnb.task
class Fails:
    n: int

    def run(self) -> int:
        print(f"about to fail {self.n}")
        raise ValueError(f"bad value {self.n}")


@labnb.task
class NeedsFailed:
    dependency: Fails

    def run(self) -> int:
        return 1


@labnb.task
class Dies:
    """Kills its own worker process."""

    n: int

    def run(self) -> None:
        print("dying now", flush=True)
        os.kill(os.getpid(), 9)


@labnb.task
class SleepsLong:
    """Writes its worker's pid to the context's 'pids' directory, then sleeps."""

    n: int

    def run(self) -> None:
        Path(self.context["pids"], f"{self.n}.pid").write_text(str(os.getpid()))
        time.sleep(60)


@labnb.task(cache=None)
class UsesSlot:
    """Reports the resources Ray reserved for it: shows that ``ray_options`` reached Ray."""

    ray_options: ClassVar[dict] = {"num_cpus": 0, "resources": {"slot": 1}}  # not a field

    n: int

    def run(self) -> float:
        import ray

        return ray.get_runtime_context().get_assigned_resources().get("slot", 0.0)


@labnb.task
class ReadsContext:
    key: str

    def run(self) -> object:
        return self.context[self.key]


@labnb.task
class DiesOnce:
    """Kills its worker the first time it runs (a marker file remembers), then succeeds."""

    n: int

    def run(self) -> int:
        marker = Path(self.context["markers"]) / f"{self.n}.died"
        if not marker.exists():
            marker.write_text("once")
            os.kill(os.getpid(), 9)
        return self.n


@labnb.task
class Streams:
    """Prints a numbered line every ``pause`` seconds: some lines go live, the rest at the end."""

    lines: int
    pause: float = 0.02

    def run(self) -> int:
        for line in labnb.progress(range(self.lines), desc="streaming"):
            print(f"line {line}")
            time.sleep(self.pause)
        return self.lines


@labnb.task
class LogsMetrics:
    """Logs a loss per step (``labnb.log_metric``, in labnb versions that have it)."""

    steps: int
    pause: float = 0.0

    def run(self) -> int:
        for step in range(self.steps):
            labnb.log_metric("loss", 1.0 / (step + 1), step=step)
            time.sleep(self.pause)
        return self.steps


@labnb.task
class LogsArtifact:
    """Keeps a small file with its result (``labnb.log_artifact``)."""

    text: str

    def run(self) -> str:
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "note.txt"
            path.write_text(self.text)
            return labnb.log_artifact(path)


@labnb.task(cache=None, resources={"cpus": 2, "memory": "64M"})
class DeclaresNeeds:
    """Reports what Ray reserved for it: shows that declared needs became Ray's options."""

    n: int

    def run(self) -> dict[str, float]:
        import ray

        return ray.get_runtime_context().get_assigned_resources()


@labnb.task(cache=None, resources={"cpus": 2})
class ChoosesRayOptions:
    """Asks Ray for a share of ``slot`` that depends on its parameter, as labtech's
    ``runner_options()`` does; its class's ``ray_options`` and declared needs say otherwise."""

    ray_options: ClassVar[dict] = {"resources": {"slot": 1}}

    share: float

    def runner_options(self) -> dict[str, Any]:
        remote = {"num_cpus": "1", "resources": {"slot": self.share}}  # '1': as labtech's docs
        return {"ray": {"remote_options": remote}}

    def run(self) -> dict[str, float]:
        import ray

        return ray.get_runtime_context().get_assigned_resources()
