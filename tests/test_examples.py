"""Execute every notebook in examples/ with nbclient and check what it shows.

Each notebook runs in a fresh temporary copy of the examples folder (so its
storage directories and mlflow.db land there), on a ``python3`` kernel that is
this interpreter (the venv's python). Every notebook must run without an error
output; notebooks listed in ``CHECKS`` get specific checks too, some through
hidden cells the test inserts around the notebook's own cells (``HIDDEN``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# What running a notebook leaves next to it (git-ignored, as the executed copies
# scripts/tutorial writes): never executed nor copied, so every run starts with
# an empty cache.
RUN_LEFTOVERS = (
    "*.executed.ipynb",
    "classification_lab_*",
    "cookbook_*",
    "labnb_storage",
    "mlflow.db",
    "mlruns",
    "search_*",
    "tracking_storage",
    ".ipynb_*",
)
NOTEBOOKS = sorted(
    path.name for path in EXAMPLES.glob("*.ipynb") if not path.name.endswith(".executed.ipynb")
)
CELL_TIMEOUT = 300
# The labs start one worker per core: one BLAS/OpenMP thread per process keeps
# them from oversubscribing the CPU (which makes runs several times slower).
KERNEL_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

PROBE_ID = "test-kernel-probe"
PROBE = """
import json as _json, sys as _sys, labnb as _labnb
print(_json.dumps({
    'executable': _sys.executable, 'prefix': _sys.prefix, 'labnb': _labnb.__file__,
}))
"""

pytestmark = pytest.mark.timeout(1200)


@dataclass
class Executed:
    nb: nbformat.NotebookNode
    workdir: Path
    seconds: float

    def cell(self, cell_id: str) -> nbformat.NotebookNode:
        for cell in self.nb.cells:
            if cell.get("id") == cell_id:
                return cell
        raise AssertionError(f"no cell with id {cell_id!r} in the executed notebook")

    def stdout(self, cell_id: str) -> str:
        return "".join(
            output.text
            for output in self.cell(cell_id).outputs
            if output.output_type == "stream" and output.name == "stdout"
        )

    def displayed(self, cell_id: str) -> list[str]:
        """The plain-text forms of what a cell displayed (widgets included), in order."""
        return [
            output.data.get("text/plain", "")
            for output in self.cell(cell_id).outputs
            if output.output_type == "display_data"
        ]

    def result_text(self, cell_id: str) -> str:
        for output in self.cell(cell_id).outputs:
            if output.output_type == "execute_result":
                return output.data["text/plain"]
        raise AssertionError(f"cell {cell_id!r} displayed no result")


@dataclass
class Hidden:
    """Code the test runs in the notebook's kernel just before / after a cell (by id)."""

    before: dict[str, str] = field(default_factory=dict)
    after: dict[str, str] = field(default_factory=dict)


def insert_hidden_cells(nb: nbformat.NotebookNode, hidden: Hidden) -> None:
    ids = [cell.get("id") for cell in nb.cells]
    for cell_id in (*hidden.before, *hidden.after):
        assert cell_id in ids, f"the notebook has no cell with id {cell_id!r}"
    new = nbformat.v4.new_code_cell
    cells = [new(PROBE, id=PROBE_ID)]
    for cell in nb.cells:
        if cell.get("id") in hidden.before:
            cells.append(new(hidden.before[cell.id], id=f"test-before-{cell.id}"))
        cells.append(cell)
        if cell.get("id") in hidden.after:
            cells.append(new(hidden.after[cell.id], id=f"test-after-{cell.id}"))
    nb.cells = cells


def execute(name: str, workdir: Path, kernel_spec_manager: KernelSpecManager) -> Executed:
    """Execute examples/<name> in ``workdir``, a fresh copy of examples/, with hidden cells."""
    shutil.copytree(EXAMPLES, workdir, ignore=shutil.ignore_patterns(*RUN_LEFTOVERS))
    nb = nbformat.read(workdir / name, as_version=4)
    insert_hidden_cells(nb, HIDDEN.get(name, Hidden()))
    client = NotebookClient(
        nb,
        km=AsyncKernelManager(kernel_name="python3", kernel_spec_manager=kernel_spec_manager),
        kernel_name="python3",
        timeout=CELL_TIMEOUT,
        allow_errors=True,
        resources={"metadata": {"path": str(workdir)}},
    )
    env = {
        **_clean_environ(),
        **KERNEL_ENV,
        "IPYTHONDIR": str(workdir.parent / "ipython"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}",
    }
    start = time.perf_counter()
    client.execute(env=env)
    seconds = time.perf_counter() - start
    print(f"executed {name} in {seconds:.1f} s")
    return Executed(nb, workdir, seconds)


def _clean_environ() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}


def error_outputs(nb: nbformat.NotebookNode) -> list[str]:
    errors = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                traceback = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(output.traceback))
                errors.append(f"cell {index} ({cell.get('id')}):\n{cell.source}\n{traceback}")
    return errors


# --- every notebook ------------------------------------------------------------


def test_there_are_examples() -> None:
    assert "tutorial.ipynb" in NOTEBOOKS
    assert "cookbook.ipynb" in NOTEBOOKS


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_clean(name: str) -> None:
    nb = nbformat.read(EXAMPLES / name, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata.kernelspec.name == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {cell.id} has committed outputs"
            assert cell.execution_count is None, f"cell {cell.id} has an execution count"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name: str, tmp_path: Path, kernel_spec_manager: KernelSpecManager) -> None:
    executed = execute(name, tmp_path / "examples", kernel_spec_manager)
    errors = error_outputs(executed.nb)
    assert not errors, "\n\n".join(errors)
    # The kernel was this interpreter (the venv's python, not one found on PATH),
    # with this checkout's labnb.
    probe = json.loads(executed.stdout(PROBE_ID))
    assert probe == {
        "executable": sys.executable,
        "prefix": sys.prefix,
        "labnb": str(EXAMPLES.parent / "labnb" / "__init__.py"),
    }
    CHECKS.get(name, lambda executed: None)(executed)


# --- tutorial.ipynb --------------------------------------------------------------

LOSS = re.compile(r"\): ([-+0-9.eE]+|inf|nan)[,}]")


def printed_losses(executed: Executed, cell_id: str) -> list[float]:
    """The values of the ``{task: log_loss}`` dict a cell printed."""
    return [float(value) for value in LOSS.findall(executed.stdout(cell_id))]


TUTORIAL_HIDDEN = Hidden(
    before={
        # From here on ClassifierExperiment.run() fails: the re-run must load everything.
        "rerun-cached": """
_test_first_results = dict(results)
_test_cache_before = lab.cache_table().sort_values('id').reset_index(drop=True)
_test_original_run = ClassifierExperiment.run


def _test_must_not_run(self):
    raise RuntimeError(f'{self!r} ran again although its result is cached')


ClassifierExperiment.run = _test_must_not_run
""",
    },
    after={
        "rerun-cached": """
ClassifierExperiment.run = _test_original_run
assert results.keys() == _test_first_results.keys()
assert all(np.array_equal(results[task], _test_first_results[task]) for task in results)
assert lab.cache_table().sort_values('id').reset_index(drop=True).equals(_test_cache_before)
print('served from the cache')
""",
        "final": """
import json
from collections import Counter

print(json.dumps({
    'types': Counter(type(task).__name__ for task in evaluation_result),
    'datasets': Counter(task.dataset_key for task in evaluation_result),
    'cached': lab.is_cached(evaluation_task),
}, sort_keys=True))
""",
    },
)


def check_tutorial(executed: Executed) -> None:
    # Ten parallel experiments, each printed with its log loss.
    losses = printed_losses(executed, "lab-1")
    assert len(losses) == 10
    assert all(0 < loss < 1 for loss in losses)

    # Running them again loaded every result: the hidden cells made run() raise.
    assert "10 results, all cached: True" in executed.stdout("rerun-cached")
    assert executed.stdout("test-after-rerun-cached") == "served from the cache\n"

    # cached_tasks lists the ten experiments.
    listed = executed.result_text("cached-tasks")
    found = re.findall(r"ClassifierExperiment\(random_state=(\d+)\)", listed)
    assert sorted(map(int, found)) == list(range(10))

    # Dependent tasks: hard 0/1 predictions lose more than the probabilities they come from.
    minmax = printed_losses(executed, "minmax-run")
    assert len(minmax) == 10
    assert min(minmax) > max(losses)

    # One naive Bayes and ten logistic regression experiments.
    assert len(printed_losses(executed, "protocol-run")) == 11
    assert executed.stdout("protocol-run").count("NBClassifierTask()") == 1

    # Two datasets through the context: 22 experiments, each scored on its own labels.
    context_losses = printed_losses(executed, "context-run")
    assert len(context_losses) == 22
    assert all(0 < loss < 5 for loss in context_losses)

    # The aggregation task scores all 44 experiments.
    assert len(printed_losses(executed, "final")) == 44
    summary = json.loads(executed.stdout("test-after-final"))
    assert summary == {
        "cached": True,
        "datasets": {"digits": 22, "iris": 22},
        "types": {"ClassifierExperiment": 22, "MinMaxProbabilityExperiment": 22},
    }
    table = executed.result_text("results-table")
    assert "digits" in table and "iris" in table

    # mlflow recorded one run per experiment, in the notebook's directory.
    assert "44 mlflow runs" in executed.stdout("mlflow-runs")
    assert (executed.workdir / "mlflow.db").is_file()
    assert "classifier_task.random_state" in executed.result_text("mlflow-runs")

    # Storage directories were created next to the notebook.
    for storage in ("classification_lab_1", "classification_lab_2", "classification_lab_3"):
        assert (executed.workdir / storage).is_dir()
    assert (executed.workdir / "classification_lab_final").is_dir()
    assert "ClassifierExperiment" in executed.result_text("cache-table")


# --- cookbook.ipynb --------------------------------------------------------------

RUN_SUMMARY = re.compile(r"(\d+) done, (\d+) loaded, (\d+) failed")
IDS = re.compile(r"\[((?:'[0-9a-f]{8}'(?:, )?)+)\]")


def run_counts(executed: Executed, cell_id: str) -> list[tuple[int, int, int]]:
    """(done, loaded, failed) of each run a cell showed, from the run widget's text form."""
    return [
        tuple(map(int, match))
        for text in executed.displayed(cell_id)
        for match in RUN_SUMMARY.findall(text)
    ]


def printed_ids(executed: Executed, cell_id: str) -> list[list[str]]:
    """The lists of short task ids a cell printed, one per line that has one."""
    return [re.findall(r"[0-9a-f]{8}", found) for found in IDS.findall(executed.stdout(cell_id))]


COOKBOOK_HIDDEN = Hidden(
    after={
        # The pipeline ran every step once: shared preprocessing is not repeated.
        "pipeline-run": """
print(json.dumps(lab.cache_table()['type'].value_counts().to_dict(), sort_keys=True))
""",
        "mlflow-runs": """
print(json.dumps({
    'task_ids': sorted(mlflow_runs['tags.labnb_task_id']),
    'expected': sorted(labnb.task_id(task) for task in runs),
    'types': sorted(set(mlflow_runs['tags.labnb_task_type'])),
}))
""",
    },
    before={"pipeline-run": "import json"},
)


def check_cookbook(executed: Executed) -> None:
    # Logging: what a task logged and printed, read back in order.
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d WARNING labnb: Warning, the seed is: 3\nThe seed is: 3\n\n",
        executed.stdout("logging-read"),
    )

    # Complex parameters: factory tasks behind a Protocol, Enum members, the context.
    protocol = executed.stdout("protocol-tasks")
    assert "LRClassifierTask(random_state=42)): training accuracy" in protocol
    assert "NBClassifierTask()): training accuracy" in protocol
    assert all(float(value) > 0.9 for value in re.findall(r"accuracy ([0-9.]+)", protocol))
    assert executed.stdout("enum-task") == (
        "{'IRIS': (150, 4), 'WINE': (178, 13), 'BREAST_CANCER': (569, 30)}\n"
    )
    assert "SumExperiment(dataset_key='ones'): np.float64(500.0)" in executed.stdout("context-task")

    # joblib inside a task (max_parallel=1): one score per fold.
    cv = executed.stdout("cv-task")
    assert "CVExperiment(cv_folds=3): 3 folds" in cv and "CVExperiment(cv_folds=5): 5 folds" in cv

    # Failures: the default raises TaskFailed naming the task; continue_on_failure
    # returns the rest, reports the failure, caches only what succeeded, keeps the logs.
    assert executed.stdout("failure-default") == (
        "RatioExperiment(denominator=0) failed with ZeroDivisionError: division by zero\n"
    )
    continued = executed.stdout("failure-continue")
    assert (
        "results: {RatioExperiment(denominator=1): 10.0, RatioExperiment(denominator=2): 5.0, "
        "RatioExperiment(denominator=5): 2.0}" in continued
    )
    assert (
        "failed: RatioExperiment(denominator=0): ZeroDivisionError: division by zero" in continued
    )
    assert "RatioExperiment(denominator=0): False" in continued
    assert continued.count(": True") == 3
    assert executed.stdout("failure-logs").rstrip().endswith("ZeroDivisionError: division by zero")

    # Definitions: moving keeps ids (loaded, not run); a new field or code_version gives new ids.
    (original,) = printed_ids(executed, "definitions-v1")
    assert len(original) == 3
    assert printed_ids(executed, "definitions-moved") == [original]
    assert "cookbook_project.experiments.BootstrapExperiment" in executed.stdout(
        "definitions-moved"
    )
    assert "all cached: True" in executed.stdout("definitions-moved")
    assert run_counts(executed, "definitions-moved") in ([], [(0, 3, 0)])
    shown, with_field, with_version = printed_ids(executed, "definitions-changed")
    assert shown == original
    assert len({*original, *with_field, *with_version}) == 9
    assert executed.stdout("definitions-changed").count("cached: False") == 2
    rerun = executed.stdout("definitions-rerun")
    assert "entries of type BootstrapExperiment: 6" in rerun
    version_2, version_1 = printed_ids(executed, "definitions-rerun")
    assert sorted(version_2) == sorted(with_version) and sorted(version_1) == sorted(original)
    child = executed.stdout("definitions-child")
    assert child.count("(loaded from the cache)") == 3 and child.count("(ran)") == 3
    assert run_counts(executed, "definitions-child") == [(3, 3, 0)]
    assert executed.stdout("definitions-cleanup") == (
        "removed 3 results of the first definition\n"
        "{'BootstrapExperiment': 3, 'BootstrapIntervalExperiment': 3}\n"
    )

    # Finding cached results: listing, is_cached, the table and the cache browser.
    assert executed.stdout("find-cached-tasks").count("Experiment(n_resamples=") == 6
    assert executed.stdout("find-is-cached") == "True False\n"
    assert "duration_s" in executed.result_text("find-table")
    assert "cache browser" in executed.result_text("browser")
    assert "6 cached tasks" in executed.result_text("browser")

    # Clearing: uncache_tasks and bust_cache.
    assert executed.stdout("clear-uncache") == "removed 1; still cached: False\n"
    assert executed.stdout("clear-bust") == "3 of 3 results computed again\n"

    # Formats: .npy, .parquet and the custom JSON format, on disk.
    assert executed.stdout("formats-builtin") == "['.npy', '.parquet']\n"
    assert "alcohol" in executed.result_text("formats-builtin")
    results = executed.workdir / "cookbook_formats" / "results"
    assert {path.suffix for path in results.rglob("*.*")} == {".npy", ".parquet", ".json"}
    (json_file,) = results.rglob("*.json")
    balance = {"n_samples": 178, "class_counts": {"0": 59, "1": 71, "2": 48}}
    assert json.loads(json_file.read_text()) == balance
    assert executed.stdout("formats-custom").startswith(f"{balance}\n")

    # Storage: none at all, a LocalStorage object, and FsspecStorage on memory://.
    assert executed.stdout("storage-none") == "178 False 0\n"
    assert "LocalStorage(" in executed.stdout("storage-local")
    assert executed.stdout("storage-local").rstrip().endswith("True")
    assert (executed.workdir / "cookbook_shared" / "catalog.sqlite").is_file()
    memory = executed.stdout("storage-fsspec")
    assert "[ClassBalance(dataset_key='digits'), ClassBalance(dataset_key='wine')]" in memory
    assert len(re.findall(r"^/cookbook/index/[0-9a-f]{32}\.json$", memory, re.MULTILINE)) == 2
    assert len(re.findall(r"^/cookbook/results/.+\.json$", memory, re.MULTILINE)) == 2

    # Loading speed: 300 results listed and loaded from the cache, then the summary alone.
    timing = executed.stdout("speed-timing")
    assert "300 listed, 300 loaded, 24 MB" in timing
    seconds = dict(re.findall(r"^(.+): ([0-9.]+) s$", timing, re.MULTILINE))
    assert set(seconds) == {
        "list the 300 cached simulations",
        "load the 300 simulation results",
        "load the summary only",
    }
    assert float(seconds["load the 300 simulation results"]) < 30
    assert run_counts(executed, "speed-setup") == [(301, 0, 0)]
    assert run_counts(executed, "speed-timing") in ([], [(0, 300, 0), (0, 1, 0)])

    # The pipeline: 2 preprocessings shared by 6 fits and 6 evaluations.
    assert json.loads(executed.stdout("test-after-pipeline-run")) == {
        "EvaluateTask": 6,
        "FitTask": 6,
        "PreprocessTask": 2,
    }
    table = executed.result_text("pipeline-run")
    assert "breast_cancer" in table and "wine" in table

    # Intermediate results: set after a run; not loaded when the top task is cached.
    assert "model: LogisticRegression(C=0.01, max_iter=1000)" in executed.stdout("intermediate")
    assert "training set: (133, 13)" in executed.stdout("intermediate")
    assert executed.stdout("intermediate-cached").startswith(
        "has the fit result: False\nhas the fit result: True\nmodel: LogisticRegression("
    )

    # Timings: started, finished and duration_s for every step.
    timings = executed.result_text("timings")
    for column in ("started", "finished", "duration_s"):
        assert column in timings
    counts = dict(
        re.findall(r"^(\w+Task)\s+(\d+)\s", executed.result_text("timings-summary"), re.MULTILINE)
    )
    assert counts == {"EvaluateTask": "6", "FitTask": "6", "PreprocessTask": "2"}

    # Hyper-parameter search: 12 trials computed (the shared preprocessing once),
    # and a new study with the same seed told every trial from the cache.
    best = re.match(r"best accuracy ([01]\.\d+) with C=", executed.stdout("search-run"))
    assert best is not None and float(best.group(1)) > 0.9
    assert "params.C" in executed.result_text("search-run")
    assert searched(" ".join(executed.displayed("search-run")))[-1] == ("12", "12", "12", "0")
    assert "'computed': 0, 'cached': 12}" in executed.stdout("search-again")
    assert (executed.workdir / "cookbook_search" / "optuna.sqlite").is_file()

    # mlflow: one run per executed task (the cached re-run adds none), in the notebook's folder.
    assert executed.stdout("mlflow-runs").startswith("2 mlflow runs\n")
    assert "metrics.train_accuracy" in executed.result_text("mlflow-runs")
    assert executed.result_text("mlflow-runs").count("MLRun-") == 2
    tracked = json.loads(executed.stdout("test-after-mlflow-runs"))
    assert tracked["task_ids"] == tracked["expected"]
    assert tracked["types"] == ["MLRun"]
    assert (executed.workdir / "mlflow.db").is_file()

    # Storage directories and the project package were created next to the notebook.
    for storage in ("failures", "definitions", "formats", "shared", "speed", "pipeline", "mlflow"):
        assert (executed.workdir / f"cookbook_{storage}" / "labnb-storage.json").is_file()
    assert (executed.workdir / "cookbook_project" / "experiments.py").is_file()

    # Configuration apart from code: a YAML file's sweep is the sweep in code, kept with
    # the run and its entries, and swept again; a bad file is one error with its line.
    assert executed.stdout("config-sweep") == (
        "4 tasks, the same tasks (and ids) as in code: True\n"
    )
    assert run_counts(executed, "config-sweep")[-1] == (6, 0, 0)
    kept = executed.stdout("config-read")
    assert kept.startswith("cookbook_config/fit_params.yaml\n# Two datasets x two values of C")
    assert "from config cookbook_config/fit_params.yaml." in kept
    assert kept.endswith("the run: True\nswept again: True\n")
    assert executed.stdout("config-error") == (
        "cookbook_config/bad_params.yaml, line 3: C[1]: expected float, got str 'strong'\n"
    )


HIDDEN: dict[str, Hidden] = {"tutorial.ipynb": TUTORIAL_HIDDEN, "cookbook.ipynb": COOKBOOK_HIDDEN}
CHECKS: dict[str, Callable[[Executed], None]] = {
    "tutorial.ipynb": check_tutorial,
    "cookbook.ipynb": check_cookbook,
}


# --- tracking.ipynb --------------------------------------------------------------
# (Registered in HIDDEN and CHECKS below, so that this section stands apart.)

TRACKING_HIDDEN = Hidden(
    after={
        "sweep-run": """
import json as _json
print(_json.dumps(lab.cache_table()['type'].value_counts().to_dict(), sort_keys=True))
""",
        "cv-results": """
print(_json.dumps({
    'rows': len(cv_results),
    'configs': sorted([C, penalty] for C, penalty in zip(cv_results['params.C'],
                                                          cv_results['params.penalty'])),
    'accuracy_ok': bool(cv_results['metrics.mean_accuracy'].between(0.9, 1).all()),
    'run_ids': int(cv_results['mlflow_run_id'].notna().sum()),
}))
""",
        "fold-metrics": """
_curve = fold_metrics[fold_metrics['metric'] == 'learning_curve_accuracy']
print(_json.dumps({
    'folds': int(fold_metrics['id'].nunique()),
    'metrics': sorted(set(fold_metrics['metric'])),
    'steps': sorted({tuple(map(int, steps)) for steps in _curve.groupby('id')['step'].agg(list)}),
}))
""",
        "mlflow-runs": """
_tasks = [*sweep, final, *(fold for cv in sweep for fold in cv.folds)]
_expected = {labnb.task_id(task) for task in _tasks}
_kinds = dict(zip(mlflow_runs['run_id'], mlflow_runs['tags.labnb_task_type']))
print(_json.dumps({
    'ids_match': set(mlflow_runs['tags.labnb_task_id']) == _expected,
    'cache_run_ids': set(lab.cache_table()['mlflow_run_id']) == set(mlflow_runs['run_id']),
    'parents': sorted({
        (kind, _kinds.get(parent)) for kind, parent in
        zip(mlflow_runs['tags.labnb_task_type'], mlflow_runs['tags.mlflow.parentRunId'])
    }, key=str),
    'fold_steps': [m.step for m in mlflow.MlflowClient().get_metric_history(
        lab.cache_table([Fold])['mlflow_run_id'].iloc[0], 'learning_curve_accuracy')],
}))
""",
    },
)


def check_tracking(executed: Executed) -> None:
    # The sweep: 6 configurations x 3 folds, 6 cross-validations and the final model.
    counts = json.loads(executed.stdout("test-after-sweep-run"))
    assert counts == {"CrossValidation": 6, "FinalModel": 1, "Fold": 18}
    assert run_counts(executed, "sweep-run") == [(25, 0, 0)]
    assert "chosen: {'C': " in executed.stdout("sweep-run")

    # The CV results table: one row per configuration, logged params and metrics, run ids.
    cv = json.loads(executed.stdout("test-after-cv-results"))
    assert cv == {
        "rows": 6,
        "configs": [[C, p] for C in (0.01, 0.1, 1.0) for p in ("l1", "l2")],
        "accuracy_ok": True,
        "run_ids": 6,
    }

    # lab.metrics: 3 scores + the learning curve's 5 steps per fold, every step in every fold.
    assert executed.stdout("fold-metrics").startswith("144 metric values from 18 folds\n")
    metrics = json.loads(executed.stdout("test-after-fold-metrics"))
    assert metrics == {
        "folds": 18,
        "metrics": ["accuracy", "f1", "learning_curve_accuracy", "roc_auc"],
        "steps": [[20, 40, 80, 160, 320]],
    }
    for cell_id in ("learning-curve", "coefficients-png"):
        outputs = executed.cell(cell_id).outputs
        assert any("image/png" in output.get("data", {}) for output in outputs), cell_id

    # lab.logged, the CSV artifact and the kept model.
    assert "artifacts: ['confusion_matrix.csv']" in executed.stdout("logged")
    assert "predicted malignant" in executed.result_text("logged")
    assert "LogisticRegression(C=" in executed.stdout("load-model")

    # mlflow: one run per executed task, linked to the cache; the cached re-run adds none.
    assert executed.stdout("mlflow-runs").startswith("25 mlflow runs\n")
    assert executed.result_text("mlflow-runs").count("CrossValidation-") == 6
    tracked = json.loads(executed.stdout("test-after-mlflow-runs"))
    steps = [20, 40, 80, 160, 320]
    parents = [["CrossValidation", "FinalModel"], ["FinalModel", None], ["Fold", "CrossValidation"]]
    assert tracked == {
        "ids_match": True,
        "cache_run_ids": True,
        "parents": parents,  # a tree: final model > cross-validations > folds
        "fold_steps": steps,
    }
    assert executed.stdout("rerun-cached") == (
        "7 results, all cached: True\n25 mlflow runs (before: 25)\n"
    )
    assert run_counts(executed, "rerun-cached") in ([], [(0, 7, 0)])
    assert (executed.workdir / "mlflow.db").is_file()
    assert (executed.workdir / "tracking_storage" / "labnb-storage.json").is_file()
    assert executed.seconds < 300


HIDDEN["tracking.ipynb"] = TRACKING_HIDDEN
CHECKS["tracking.ipynb"] = check_tracking


# --- search.ipynb ----------------------------------------------------------------

SEARCH_HIDDEN = Hidden(
    after={
        "search-run": """
import json as _json
print(_json.dumps(search.counts(), sort_keys=True))
""",
        "config-search-2": """
import optuna as _optuna
print(_json.dumps({
    'counts': kernels.counts(),
    'kernels': sorted(set(kernels.trials_dataframe()['params.kernel'])),
    'cached_svms': int((lab.cache_table()['type'] == 'CrossValidatedSVM').sum()),
    'studies': sorted(summary.study_name.split('-')[0] for summary in
                      _optuna.get_all_study_summaries('sqlite:///search_storage/optuna.sqlite')),
}))
""",
    },
)

SEARCHED = re.compile(
    r"(\d+) of (\d+) trials \((?:(\d+) computed, (\d+) from the cache|(nothing) to compute)"
)


def searched(text: str) -> list[tuple[str, ...]]:
    """(ended, n_trials, computed, cached) of each search summary in ``text``."""
    return [
        (ended, total, computed or "0", cached or "0")
        for ended, total, computed, cached, _ in SEARCHED.findall(text)
    ]


def check_search(executed: Executed) -> None:
    # Step 4: 30 trials computed, two at a time, the header saying the best so far.
    counts = json.loads(executed.stdout("test-after-search-run"))
    assert counts["complete"] == 30 and counts["computed"] == 30 and counts["failed"] == 0
    header = " ".join(executed.displayed("search-run"))
    assert searched(header)[-1] == ("30", "30", "30", "0")
    assert "best val_auc 0.99" in header
    assert run_counts(executed, "search-run") == [(30, 0, 0)]
    best = re.search(r"best val_auc (0\.\d+) with \{'C': ", executed.stdout("best"))
    assert best is not None and float(best.group(1)) > 0.99
    assert "'mean_auc': " in executed.stdout("best")
    assert "task_id" in executed.result_text("trials-frame")
    assert any("image/png" in out.get("data", {}) for out in executed.cell("plot").outputs)

    # Resumed in a new process: only the 10 missing trials computed; back here, none.
    assert searched(executed.stdout("resume-process")) == [("40", "40", "10", "0")]
    assert executed.stdout("resume-here") == "40 trials; a run was needed: False\n"

    # Step 5: the file describes the same study (nothing to compute); the second
    # file is a new study over two kernels and 10 folds.
    assert executed.stdout("config-search").rstrip().endswith("True")
    assert "FloatDistribution(high=1000.0, log=True, low=0.01, step=None)" in (
        executed.stdout("config-search")
    )
    kernels = json.loads(executed.stdout("test-after-config-search-2"))
    assert kernels["counts"]["complete"] == 30 and kernels["counts"]["computed"] >= 1
    assert kernels["kernels"] == ["rbf", "sigmoid"]
    assert kernels["cached_svms"] == 40 + kernels["counts"]["computed"]
    assert kernels["studies"] == ["CrossValidatedSVM", "CrossValidatedSVM"]
    table = executed.result_text("compare")
    assert "sigmoid" in table and "10 folds" in table and "5 folds" in table
    assert (executed.workdir / "search_storage" / "optuna.sqlite").is_file()
    assert executed.seconds < 120


HIDDEN["search.ipynb"] = SEARCH_HIDDEN
CHECKS["search.ipynb"] = check_search
