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
from ipykernel.kernelspec import write_kernel_spec
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
    "labnb_storage",
    "mlflow.db",
    "mlruns",
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


@pytest.fixture(scope="session")
def kernel_spec_manager(tmp_path_factory: pytest.TempPathFactory) -> KernelSpecManager:
    """Only one kernel, ``python3``, and it is this interpreter (the venv's python)."""
    kernels = tmp_path_factory.mktemp("kernels")
    write_kernel_spec(str(kernels / "python3"))
    argv = json.loads((kernels / "python3" / "kernel.json").read_text())["argv"]
    assert argv[0] == sys.executable
    return KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)


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


HIDDEN: dict[str, Hidden] = {"tutorial.ipynb": TUTORIAL_HIDDEN}
CHECKS: dict[str, Callable[[Executed], None]] = {"tutorial.ipynb": check_tutorial}
