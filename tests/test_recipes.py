"""The seed tutorial's pipeline and the cookbook's recipes, written as their users write them.

This module imports labnb as labtech on purpose: code written for labtech must
run unchanged. Task types are defined inside the tests (as in a notebook, they
are not importable by name), so worker processes receive them by value.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Protocol

import mlflow
import numpy as np
import pytest
from sklearn import datasets
from sklearn.base import ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.naive_bayes import GaussianNB
from sklearn.preprocessing import StandardScaler

import labnb as labtech

iris_X, iris_y = datasets.load_iris(return_X_y=True)
iris_X = StandardScaler().fit_transform(iris_X)
wine_X, wine_y = datasets.load_wine(return_X_y=True)
wine_X = StandardScaler().fit_transform(wine_X)
DATASETS = {"iris": {"X": iris_X, "y": iris_y}, "wine": {"X": wine_X, "y": wine_y}}


class ClassifierTask(Protocol):
    def run(self) -> ClassifierMixin: ...


@labtech.task(cache=None)
class LRClassifierTask:
    random_state: int

    def run(self) -> ClassifierMixin:
        return LogisticRegression(random_state=self.random_state, max_iter=1000)


@labtech.task(cache=None)
class NBClassifierTask:
    def run(self) -> ClassifierMixin:
        return GaussianNB()


def test_logging_recipe(capfd):
    @labtech.task
    class PrintingExperiment:
        seed: int

        def run(self):
            labtech.logger.warning(f"Warning, the seed is: {self.seed}")
            print(f"The seed is: {self.seed}")
            return self.seed * self.seed

    lab = labtech.Lab(storage=None, notebook=True)
    results = lab.run_tasks([PrintingExperiment(seed=seed) for seed in range(5)])
    assert sorted(results.values()) == [0, 1, 4, 9, 16]
    err = capfd.readouterr().err
    assert "The seed is: 3" in err and "Warning, the seed is: 3" in err
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d WARNING labnb: Warning, the seed is: 2\nThe seed is: 2\n",
        lab.logs(PrintingExperiment(seed=2)),
    )


def test_protocol_typed_nested_tasks_and_context(tmp_path):
    @labtech.task
    class ClassifierExperiment:
        classifier_task: ClassifierTask
        dataset_key: str

        def run(self):
            dataset = self.context["DATASETS"][self.dataset_key]
            clf = clone(self.classifier_task.result)
            clf.fit(dataset["X"], dataset["y"])
            return clf.predict_proba(dataset["X"])

    experiments = [
        ClassifierExperiment(classifier_task=classifier_task, dataset_key=dataset_key)
        for dataset_key in DATASETS
        for classifier_task in [
            NBClassifierTask(),
            *[LRClassifierTask(random_state=s) for s in range(3)],
        ]
    ]
    lab = labtech.Lab(
        storage=tmp_path / "lab", notebook=True, context={"DATASETS": DATASETS}, max_workers=2
    )
    results = lab.run_tasks(experiments)
    losses = {
        experiment: log_loss(DATASETS[experiment.dataset_key]["y"], probs)
        for experiment, probs in results.items()
    }
    assert len(losses) == 8 and all(0 < loss < 1.5 for loss in losses.values())
    assert len(lab.cached_tasks([ClassifierExperiment])) == 8
    assert lab.cached_tasks([LRClassifierTask]) == []  # cache=None


def test_enum_of_objects_recipe():
    class Dataset:
        def __init__(self, key):
            self.key = key
            self.data = {"iris": iris_X, "wine": wine_X}[key]

        def __eq__(self, other):
            return type(self) is type(other) and self.key == other.key

    class DatasetOption(Enum):
        IRIS = Dataset("iris")
        WINE = Dataset("wine")

    @labtech.task
    class DatasetExperiment:
        dataset: DatasetOption

        def run(self):
            return self.dataset.value.data.shape

    lab = labtech.Lab(storage=None, notebook=True)
    results = lab.run_tasks([DatasetExperiment(dataset=option) for option in DatasetOption])
    assert sorted(results.values()) == [(150, 4), (178, 13)]


def test_max_parallel_with_joblib_inside_the_task(tmp_path):
    from sklearn.model_selection import cross_val_score

    @labtech.task(max_parallel=1)
    class CVExperiment:
        cv_folds: int

        def run(self):
            return cross_val_score(
                GaussianNB(),
                iris_X,
                iris_y,
                cv=self.cv_folds,
                n_jobs=self.context["within_task_workers"],
            )

    lab = labtech.Lab(storage=None, notebook=True, context={"within_task_workers": 2})
    results = lab.run_tasks([CVExperiment(cv_folds=folds) for folds in [3, 5]])
    assert sorted(len(scores) for scores in results.values()) == [3, 5]


def test_tutorial_pipeline_with_mlflow(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("example_labtech_experiment")

    class ExperimentTask(Protocol):
        def run(self) -> np.ndarray: ...

    @labtech.task(mlflow_run=True)
    class ClassifierExperiment:
        classifier_task: ClassifierTask
        dataset_key: str

        def run(self) -> np.ndarray:
            dataset = self.context["DATASETS"][self.dataset_key]
            clf = clone(self.classifier_task.result)
            clf.fit(dataset["X"], dataset["y"])
            mlflow.log_metric("train_accuracy", clf.score(dataset["X"], dataset["y"]))
            return clf.predict_proba(dataset["X"])

    @labtech.task(mlflow_run=True)
    class MinMaxProbabilityExperiment:
        experiment: ExperimentTask

        def run(self) -> np.ndarray:
            prob_y = self.experiment.result
            min_max_prob_y = np.zeros(prob_y.shape)
            min_max_prob_y[np.arange(len(prob_y)), prob_y.argmax(axis=1)] = 1
            return min_max_prob_y

    @labtech.task
    class ExperimentEvaluationTask:
        experiments: list[ExperimentTask]

        def run(self):
            def dataset_key(experiment):
                inner = getattr(experiment, "experiment", experiment)
                return inner.dataset_key

            return {
                experiment: log_loss(DATASETS[dataset_key(experiment)]["y"], experiment.result)
                for experiment in self.experiments
            }

    classifier_experiments = [
        ClassifierExperiment(classifier_task=classifier_task, dataset_key=dataset_key)
        for dataset_key in DATASETS
        for classifier_task in [NBClassifierTask(), LRClassifierTask(random_state=1)]
    ]
    min_max = [MinMaxProbabilityExperiment(experiment=e) for e in classifier_experiments]
    evaluation = ExperimentEvaluationTask(experiments=[*classifier_experiments, *min_max])
    lab = labtech.Lab(storage="lab", notebook=True, context={"DATASETS": DATASETS}, max_workers=2)
    result = lab.run_task(evaluation)
    assert len(result) == 8 and set(result) == {*classifier_experiments, *min_max}

    runs = mlflow.search_runs(experiment_names=["example_labtech_experiment"])
    assert len(runs) == 8
    assert sorted(runs["tags.labtech_task_type"].unique()) == [
        "test_tutorial_pipeline_with_mlflow.<locals>.ClassifierExperiment",
        "test_tutorial_pipeline_with_mlflow.<locals>.MinMaxProbabilityExperiment",
    ]
    assert runs["metrics.train_accuracy"].notna().sum() == 4
    assert set(runs["params.dataset_key"].dropna()) == {"iris", "wine"}
    # Loading from the cache creates no new run.
    assert lab.run_task(evaluation) == result
    assert len(mlflow.search_runs(experiment_names=["example_labtech_experiment"])) == 8


def test_continue_on_failure_recipe():
    @labtech.task
    class Flaky:
        n: int

        def run(self):
            if self.n == 1:
                raise RuntimeError("flaky")
            return self.n

    lab = labtech.Lab(storage=None, continue_on_failure=True)
    results = lab.run_tasks([Flaky(n=n) for n in range(3)])
    assert dict(results) == {Flaky(n=0): 0, Flaky(n=2): 2}
    assert results.failures[Flaky(n=1)].message == "flaky"


@pytest.mark.parametrize("runner", ["process", "thread"])
def test_recipes_also_run_on_other_runners(tmp_path, runner):
    @labtech.task
    class Square:
        x: int

        def run(self):
            return self.x**2

    lab = labtech.Lab(storage=tmp_path / runner, runner=runner)
    assert lab.run_tasks([Square(x=3)]) == {Square(x=3): 9}
