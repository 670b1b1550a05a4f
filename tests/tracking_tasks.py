"""Task types for the tracking tests; importable by worker processes."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
from sklearn.linear_model import LogisticRegression

import labnb


def _fit(c: float):
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0, 0, 1, 1])
    return LogisticRegression(C=c).fit(X, y)


@labnb.task
class Prepare:
    n: int

    def run(self) -> int:
        labnb.log_param("prepared", self.n)
        return self.n


@labnb.task(mlflow_run=True)
class PrepareTracked:
    n: int

    def run(self) -> int:
        labnb.log_metric("rows", self.n)
        return self.n


@labnb.task
class Train:
    c: float
    data: Prepare

    def run(self) -> float:
        for epoch in range(3):
            labnb.log_metric("loss", 1.0 / (epoch + 1), step=epoch)
        model = _fit(self.c)
        labnb.log_param("solver", model.solver)
        labnb.log_features(["x"])
        labnb.log_metric("accuracy", 0.75)
        Path("report.txt").write_text(f"C={self.c}\n")
        labnb.log_artifact("report.txt")
        folder = Path("plots")
        folder.mkdir(exist_ok=True)
        (folder / "a.txt").write_text("a")
        labnb.log_artifact(folder)
        labnb.log_model("model", model)
        return self.c


@labnb.task(mlflow_run=True)
class TrainTracked:
    c: float
    data: PrepareTracked

    def run(self) -> float:
        for epoch in range(3):
            labnb.log_metric("loss", 1.0 / (epoch + 1), step=epoch)
        mlflow.log_metric("direct", 42.0)
        labnb.log_param("solver", "lbfgs")
        Path("report.txt").write_text(f"C={self.c}\n")
        labnb.log_artifact("report.txt")
        labnb.log_model("model", _fit(self.c))
        return self.c
