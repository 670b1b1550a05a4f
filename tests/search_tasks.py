"""Tasks the search tests optimise (importable, so a second process rebuilds them).

Each leaves a mark (a file named by its task id, one line per execution) in
the folder ``context["marks"]``: what was computed, whichever process did it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import labnb


def mark(task: object, context: dict) -> None:
    with open(Path(context["marks"]) / labnb.task_id(task), "a") as file:
        file.write(f"{os.getpid()}\n")


def executions(marks: Path) -> dict[str, int]:
    """Task id -> how many times it ran to its end."""
    return {path.name: len(path.read_text().splitlines()) for path in marks.iterdir()}


@labnb.task
class Quadratic:
    x: float
    pause: float = 0.0

    def run(self) -> float:
        time.sleep(self.pause)
        mark(self, self.context)
        return (self.x - 0.3) ** 2


@labnb.task
class Fragile:
    x: float

    def run(self) -> float:
        if self.x > 0.5:
            raise ValueError(f"x={self.x:.3f} is too large")
        mark(self, self.context)
        return self.x


@labnb.task
class Epochs:
    """Logs ``loss`` = x at each of 5 steps, ``pause`` seconds apart."""

    x: float
    pause: float = 0.2

    def run(self) -> float:
        for step in range(5):
            time.sleep(self.pause)
            labnb.log_metric("loss", self.x, step=step)
        mark(self, self.context)
        return self.x


@labnb.task
class Scored:
    x: float
    scale: int = 1

    def run(self) -> dict:
        labnb.log_metric("score", -self.scale * (self.x - 0.7) ** 2)
        mark(self, self.context)
        return {"x": self.x}


@labnb.task
class Data:
    """A dependency every trial shares (``n < 0`` fails)."""

    n: int

    def run(self) -> list[int]:
        if self.n < 0:
            raise ValueError("no data")
        mark(self, self.context)
        return list(range(self.n))


@labnb.task
class OnData:
    data: Data
    x: float

    def run(self) -> float:
        mark(self, self.context)
        return (self.x - len(self.data.result) / 10) ** 2
