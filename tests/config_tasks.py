"""Task types for the config file tests; importable by run processes and workers."""

from __future__ import annotations

from enum import Enum
from typing import Literal

import labnb


class Kernel(Enum):
    RBF = "rbf"
    LINEAR = "linear"


@labnb.task
class Dataset:
    n: int
    noise: float = 0.0

    def run(self) -> list[float]:
        return [i + self.noise for i in range(self.n)]


@labnb.task
class Fit:
    data: Dataset
    C: float
    kernel: Kernel = Kernel.RBF
    layers: tuple[int, ...] = (8,)
    seed: int = 0
    solver: Literal["lbfgs", "sgd"] = "lbfgs"
    tag: str | None = None

    def post_init(self) -> None:
        if self.C <= 0:
            raise ValueError("C must be positive")

    def run(self) -> float:
        return sum(self.data.result) * self.C + self.seed
