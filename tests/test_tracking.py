"""Experiment tracking: labnb.log_* inside tasks, kept with results; real mlflow runs.

mlflow is real here (a SQLite store in a temp dir, no mocks), and tasks run in
two worker processes, where mlflow's active run is per process.
"""

from __future__ import annotations

import os

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from tracking_tasks import Prepare, PrepareTracked, Train, TrainTracked

import labnb


@pytest.fixture
def lab(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # workers start here too: relative artifact paths work
    return labnb.Lab(storage=tmp_path / "store", max_workers=2)


def test_logged_values_are_kept_with_the_result(lab, tmp_path):
    tasks = [Train(c=c, data=Prepare(n=4)) for c in (0.5, 2.0)]
    lab.run_tasks(tasks)
    logged = lab.logged(tasks[0])
    assert logged["params"] == {"solver": "lbfgs"}
    assert [(m[0], m[1], m[2]) for m in logged["metrics"]] == [
        ("loss", 1.0, 0),
        ("loss", 0.5, 1),
        ("loss", 1 / 3, 2),
        ("accuracy", 0.75, None),
    ]
    assert logged["features"] == ["x"] and logged["models"] == ["model"]
    assert logged["artifacts"]["report.txt"].read_text() == "C=0.5\n"
    assert (logged["artifacts"]["plots"] / "a.txt").read_text() == "a"
    assert lab.load_model(tasks[1], "model").C == 2.0
    assert lab.logged(Prepare(n=4))["params"] == {"prepared": 4}

    # A new Lab (a restarted kernel) sees the same.
    again = labnb.Lab(storage=tmp_path / "store", runner="serial")
    assert again.logged(tasks[0])["features"] == ["x"]

    table = again.cache_table([Train])
    assert {"params.solver", "metrics.loss", "metrics.accuracy"} <= set(table.columns)
    assert set(table["metrics.loss"]) == {1 / 3}

    metrics = again.metrics([Train])
    assert len(metrics) == 8 and set(metrics["metric"]) == {"loss", "accuracy"}
    assert metrics.groupby("params.c")["value"].count().to_dict() == {0.5: 4, 2.0: 4}
    assert metrics.query("metric == 'loss'")["step"].tolist().count(2) == 2
    assert len(again.metrics([tasks[0]])) == 4

    folder = logged["artifacts"]["report.txt"].parent
    again.uncache_tasks([tasks[0]])
    assert not folder.exists()


@pytest.mark.parametrize(
    "call", ["log_param", "log_metric", "log_features", "log_artifact", "log_model"]
)
def test_logging_outside_a_run_fails_clearly(call):
    arguments = {
        "log_param": ("a", 1),
        "log_metric": ("a", 1.0),
        "log_features": (["a"],),
        "log_artifact": (__file__,),
        "log_model": ("m", object()),
    }[call]
    with pytest.raises(RuntimeError, match=rf"labnb.{call}\(\) only works inside a task's run\(\)"):
        getattr(labnb, call)(*arguments)


def test_bad_logged_values_fail_the_task_clearly(lab):
    @labnb.task
    class BadMetric:
        def run(self):
            labnb.log_metric("accuracy", "high")

    with pytest.raises(labnb.TaskFailed, match="'accuracy' must be a number"):
        lab.run_tasks([BadMetric()])


@pytest.fixture
def tracking(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.set_experiment(f"labnb-tests-{os.getpid()}-{tmp_path.name}")
    yield MlflowClient(uri), experiment.experiment_id
    mlflow.set_tracking_uri(None)


def test_mlflow_runs_from_worker_processes(lab, tracking):
    client, experiment = tracking
    tasks = [TrainTracked(c=c, data=PrepareTracked(n=4)) for c in (0.5, 2.0)]
    lab.run_tasks(tasks)

    runs = client.search_runs([experiment])
    assert len(runs) == 3  # the shared PrepareTracked ran once
    by_type = {}
    for run in runs:
        by_type.setdefault(run.data.tags["labnb_task_type"], []).append(run)
    assert sorted(by_type) == ["PrepareTracked", "TrainTracked"]
    (prepare,) = by_type["PrepareTracked"]
    for run in by_type["TrainTracked"]:
        tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
        assert tags["labtech_task_type"] == "TrainTracked"
        assert tags["labnb_task_id"] in {labnb.task_id(task) for task in tasks}
        assert params["data"] == "PrepareTracked" and params["data.n"] == "4"
        assert params["solver"] == "lbfgs" and params["c"] in {"0.5", "2.0"}
        assert metrics["direct"] == 42.0 and metrics["loss"] == 1 / 3
        history = client.get_metric_history(run.info.run_id, "loss")
        assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
        assert "report.txt" in {item.path for item in client.list_artifacts(run.info.run_id)}
        assert tags["labnb_dependency_run_ids"] == prepare.info.run_id
    # Models went through mlflow's sklearn flavour: mlflow 3 keeps them as
    # logged models linked to their run.
    models = mlflow.search_logged_models(experiment_ids=[experiment], output_format="list")
    assert sorted((model.name, model.source_run_id) for model in models) == sorted(
        ("model", run.info.run_id) for run in by_type["TrainTracked"]
    )
    loaded = mlflow.sklearn.load_model(models[0].model_uri)
    assert loaded.C in (0.5, 2.0)

    # The shared dependency is linked to its parents (mlflow's UI nests it under one).
    prepare_tags = client.get_run(prepare.info.run_id).data.tags
    parents = {run.info.run_id for run in by_type["TrainTracked"]}
    assert set(prepare_tags["labnb_parent_run_ids"].split(",")) == parents
    assert prepare_tags["mlflow.parentRunId"] in parents

    # Loading from the cache creates no run; the run id is kept with the result.
    lab.run_tasks(tasks)
    assert len(client.search_runs([experiment])) == 3
    table = lab.cache_table([TrainTracked])
    assert set(table["mlflow_run_id"]) == parents
    assert lab.load_model(tasks[0], "model").C == 0.5
