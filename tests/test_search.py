"""Hyper-parameter search (``lab.optimize``): real Optuna studies whose trials are
labnb tasks, run on a real ``Lab`` (process runner, 2 workers) in tmp storages.

What each task computed is counted by the marks it leaves (``search_tasks``),
in whichever process it ran, so "computes nothing" is measured, not assumed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pytest
from jupyter_client.manager import KernelManager
from optuna.distributions import FloatDistribution, IntDistribution
from search_tasks import Data, Epochs, Fragile, OnData, Quadratic, Scored, executions
from test_kernel_restart import execute, kernel  # noqa: F401 - the fixture, with its helper

import labnb
from labnb.search import SearchError

pytestmark = pytest.mark.timeout(300)

TESTS = Path(__file__).resolve().parent
SPACE = {"x": FloatDistribution(0.0, 1.0)}


@pytest.fixture
def marks(tmp_path: Path) -> Path:
    folder = tmp_path / "marks"
    folder.mkdir()
    return folder


def make_lab(storage: Path, marks: Path, **options) -> labnb.Lab:
    options.setdefault("max_workers", 2)
    return labnb.Lab(storage=storage, context={"marks": str(marks)}, **options)


def params(search: labnb.Search) -> list[dict]:
    return [trial.params for trial in search.trials()]


def test_a_search_runs_its_trials_on_every_worker_at_once(tmp_path: Path, marks: Path) -> None:
    # 20 trials of 0.5 s: on 2 workers at most 0.6 x the same search on 1 worker
    # (the ideal is 0.5). Both pay the same start-up (a warm-up imports Optuna
    # here first, as a notebook's first search does); the 2-worker search is
    # timed twice and the faster counts, since the 2 cores are shared.
    warm = make_lab(tmp_path / "warm", marks)
    warm.optimize(Quadratic, SPACE, 2, seed=0, disable_progress=True)
    timings: dict[str, float] = {}
    for name, workers in (("2 workers", 2), ("1 worker", 1), ("2 workers again", 2)):
        lab = make_lab(tmp_path / name.replace(" ", "-"), marks, max_workers=workers)
        start = time.perf_counter()
        search = lab.optimize(Quadratic, SPACE, 20, fixed={"pause": 0.5}, seed=1)
        timings[name] = time.perf_counter() - start
        assert search.counts()["computed"] == 20
        tasks = search.run.frame()  # type: ignore[union-attr]
        assert len(tasks) == 20 and (tasks["status"] == "done").all()
    print(", ".join(f"{name}: {seconds:.2f} s" for name, seconds in timings.items()))
    parallel = min(timings["2 workers"], timings["2 workers again"])
    assert timings["1 worker"] >= 10.0
    assert parallel <= 0.6 * timings["1 worker"]


def test_a_rerun_of_the_same_search_computes_nothing(tmp_path: Path, marks: Path) -> None:
    lab = make_lab(tmp_path / "storage", marks)
    first = lab.optimize(Quadratic, SPACE, 14, seed=7, disable_progress=True)
    assert first.counts()["computed"] == 14 and len(executions(marks)) == 14

    # The same call again: the study has its 14 trials, nothing starts.
    again = lab.optimize(Quadratic, SPACE, 14, seed=7, disable_progress=True)
    assert again.run is None
    assert again.study.study_name == first.study.study_name
    assert len(again.trials()) == 14

    # A new study, same seed: the same suggestions, each told from the cache
    # (TPE past its 10 random start-up trials included).
    fresh = lab.optimize(Quadratic, SPACE, 14, seed=7, study_name="fresh", disable_progress=True)
    assert params(fresh) == params(first)
    assert fresh.counts() | {"cached": 14, "computed": 0} == fresh.counts()
    assert fresh.trials_dataframe()["cached"].all()
    assert sorted(executions(marks).values()) == [1] * 14
    assert fresh.best_value == first.best_value


def test_a_study_resumes_in_a_new_process_and_adds_only_new_trials(
    tmp_path: Path, marks: Path
) -> None:
    storage = tmp_path / "storage"
    lab = make_lab(storage, marks)
    before = lab.optimize(Quadratic, SPACE, 6, seed=3, disable_progress=True)
    numbers = {trial.number: trial.params for trial in before.trials()}
    script = f"""
        import json, labnb
        from optuna.distributions import FloatDistribution
        from search_tasks import Quadratic
        context = {{"marks": {str(marks)!r}}}
        lab = labnb.Lab(storage={str(storage)!r}, max_workers=2, context=context)
        search = lab.optimize(Quadratic, {{"x": FloatDistribution(0.0, 1.0)}}, 10, seed=3)
        print(json.dumps({{"name": search.study.study_name, "counts": search.counts()}}))
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["name"] == before.study.study_name
    assert found["counts"]["computed"] == 4 and found["counts"]["complete"] == 10
    after = lab.optimize(Quadratic, SPACE, 10, seed=3, disable_progress=True)
    assert after.run is None  # this process sees the 10 trials: nothing to do
    assert {t.number: t.params for t in after.trials() if t.number < 6} == numbers
    assert sorted(executions(marks).values()) == [1] * 10  # 6 here, 4 there, none twice


def test_a_search_whose_run_process_is_killed_resumes_without_losing_a_trial(
    tmp_path: Path, marks: Path
) -> None:
    lab = make_lab(tmp_path / "storage", marks)
    fixed = {"pause": 0.4}
    search = lab.optimize(Quadratic, SPACE, 12, fixed=fixed, seed=5, wait=False)
    assert search.run is not None
    deadline = time.time() + 60
    while len(executions(marks)) < 4:
        assert time.time() < deadline and not search.done, "the search did not get going"
        time.sleep(0.05)
    os.kill(search.run.pid, signal.SIGKILL)  # type: ignore[attr-defined]
    finished_before = {t.number for t in search.trials() if t.state.name == "COMPLETE"}
    assert 3 <= len(finished_before) < 12  # a 4th may have ended and not been told yet

    resumed = lab.optimize(Quadratic, SPACE, 12, fixed=fixed, seed=5, disable_progress=True)
    frame = resumed.trials_dataframe()
    complete = frame[frame["state"] == "COMPLETE"]
    assert len(complete) == 12
    assert finished_before <= set(complete["number"])
    # The trials cut off by the kill are asked again, first; none of the
    # tasks that had finished ran again.
    interrupted = frame[frame["state"] == "INTERRUPTED"]
    assert len(interrupted) >= 1
    retried = {tuple(p.items()) for p in complete[complete["number"] > max(finished_before)]
               .filter(like="params.").to_dict("records")}  # fmt: skip
    for _, row in interrupted.dropna(subset=["params.x"]).iterrows():
        assert (("params.x", row["params.x"]),) in retried  # (killed before its x was stored)
    ran = executions(marks)
    finished_ids = set(frame[frame["number"].isin(finished_before)]["task_id"])
    assert all(ran[key] == 1 for key in finished_ids)
    assert len(ran) == 12


def test_trials_whose_task_fails_are_recorded_as_failed(tmp_path: Path, marks: Path) -> None:
    lab = make_lab(tmp_path / "storage", marks)
    search = lab.optimize(Fragile, SPACE, 12, sampler="random", seed=2, disable_progress=True)
    frame = search.trials_dataframe()
    failed, complete = frame[frame["state"] == "FAIL"], frame[frame["state"] == "COMPLETE"]
    assert len(frame) == 12 and len(failed) >= 1 and len(complete) >= 1
    assert (failed["params.x"] > 0.5).all() and (complete["params.x"] <= 0.5).all()
    assert failed["error"].str.startswith("ValueError: x=").all()
    assert complete["error"].isna().all()
    assert search.counts()["failed"] == len(failed)
    assert search.best_value == complete["value"].min()
    assert len(executions(marks)) == len(complete)  # failed ones left no result


def test_a_pruner_stops_the_trials_whose_logged_steps_are_bad(tmp_path: Path, marks: Path) -> None:
    lab = make_lab(tmp_path / "storage", marks)
    pruner = optuna.pruners.ThresholdPruner(upper=0.5)
    start = time.perf_counter()
    search = lab.optimize(
        Epochs, SPACE, 8, metric="loss", pruner=pruner, sampler="random", seed=4,
        disable_progress=True,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    frame = search.trials_dataframe()
    pruned, complete = frame[frame["state"] == "PRUNED"], frame[frame["state"] == "COMPLETE"]
    assert len(pruned) >= 1 and len(complete) >= 1 and len(pruned) + len(complete) == 8
    assert (pruned["params.x"] > 0.5).all() and (complete["params.x"] <= 0.5).all()
    # Stopped at their first step: no pruned task ran to its end (5 steps of 0.2 s).
    ran = executions(marks)
    assert not set(pruned["task_id"]) & set(ran)
    assert set(complete["task_id"]) == set(ran)
    tasks = search.run.frame().set_index("id")  # type: ignore[union-attr]
    assert (tasks.loc[list(pruned["task_id"]), "duration_s"] < 0.8).all()
    assert (tasks.loc[list(pruned["task_id"]), "error"].str.startswith("TrialPruned")).all()
    print(f"8 trials, {len(pruned)} pruned: {seconds:.1f} s")


def test_without_a_pruner_no_trial_is_pruned(tmp_path: Path, marks: Path) -> None:
    # Optuna's own default would be a MedianPruner: labnb's is none.
    lab = make_lab(tmp_path / "storage", marks)
    fixed = {"pause": 0.05}
    search = lab.optimize(
        Epochs, SPACE, 8, metric="loss", fixed=fixed, seed=4, disable_progress=True
    )
    assert search.counts()["complete"] == 8 and len(executions(marks)) == 8


def test_the_value_can_be_a_logged_metric_or_a_function_of_the_result(
    tmp_path: Path, marks: Path
) -> None:
    lab = make_lab(tmp_path / "storage", marks)
    by_metric = lab.optimize(
        Scored, SPACE, 6, direction="maximize", metric="score", fixed={"scale": 2}, seed=0,
        disable_progress=True,
    )  # fmt: skip
    for trial in by_metric.trials():
        assert trial.value == pytest.approx(-2 * (trial.params["x"] - 0.7) ** 2)
    by_function = lab.optimize(
        Scored, SPACE, 6, metric=lambda result: result["x"], fixed={"scale": 2}, seed=0,
        disable_progress=True,
    )  # fmt: skip
    assert by_function.study.study_name != by_metric.study.study_name
    assert [t.value for t in by_function.trials()] == [t.params["x"] for t in by_function.trials()]
    # The same seed suggests the same x: the second search computed nothing.
    assert by_function.counts()["cached"] == 6 and len(executions(marks)) == 6
    best = by_metric.best_task
    assert best == Scored(x=by_metric.best_params["x"], scale=2)
    assert best.result == {"x": by_metric.best_params["x"]}
    assert lab.is_cached(best)


def test_a_fixed_dependency_is_computed_once_for_every_trial(tmp_path: Path, marks: Path) -> None:
    lab = make_lab(tmp_path / "storage", marks)
    search = lab.optimize(
        OnData, SPACE, 6, fixed={"data": Data(n=3)}, seed=0, disable_progress=True
    )
    assert search.counts()["complete"] == 6
    ran = executions(marks)
    assert ran[labnb.task_id(Data(n=3))] == 1 and len(ran) == 7
    assert search.best_task.data == Data(n=3)


def test_a_failing_dependency_fails_the_trials_and_stops_the_search(
    tmp_path: Path, marks: Path
) -> None:
    lab = make_lab(tmp_path / "storage", marks)
    search = lab.optimize(OnData, SPACE, 20, fixed={"data": Data(n=-1)}, disable_progress=True)
    frame = search.trials_dataframe()
    assert 1 <= len(frame) <= 3 + 1  # the trials asked before it failed: 2 workers + 1 queued
    assert (frame["state"] == "FAIL").all()
    assert frame["error"].str.startswith("DependencyFailed: it depends on Data(n=-1)").all()
    assert executions(marks) == {}


def test_a_result_that_is_not_a_number_fails_its_trial_saying_what_to_do(
    tmp_path: Path, marks: Path
) -> None:
    lab = make_lab(tmp_path / "storage", marks)
    search = lab.optimize(Scored, SPACE, 3, seed=0, disable_progress=True)
    frame = search.trials_dataframe()
    assert (frame["state"] == "FAIL").all()
    assert frame["error"].str.contains("not a number: give optimize a metric=").all()


def test_the_trials_come_back_as_a_dataframe_with_their_task_ids(
    tmp_path: Path, marks: Path
) -> None:
    lab = make_lab(tmp_path / "storage", marks)
    space = {"x": FloatDistribution(0.0, 1.0), "pause": FloatDistribution(0.0, 0.01)}
    search = lab.optimize(Quadratic, space, 5, seed=0, disable_progress=True)
    frame = search.trials_dataframe()
    assert list(frame.columns) == [
        "number", "state", "value", "params.x", "params.pause", "task_id", "cached", "run",
        "error", "started", "finished", "duration_s",
    ]  # fmt: skip
    assert list(frame["number"]) == [0, 1, 2, 3, 4]
    for _, row in frame.iterrows():
        task = Quadratic(x=row["params.x"], pause=row["params.pause"])
        assert row["task_id"] == labnb.task_id(task) and lab.is_cached(task)
        assert row["value"] == pytest.approx((row["params.x"] - 0.3) ** 2)
    assert set(frame["run"]) == {search.run.id}  # type: ignore[union-attr]
    assert "best result" in search.summary() and "5 of 5 trials (5 computed" in search.summary()
    assert (tmp_path / "storage" / "optuna.sqlite").is_file()


def test_a_search_on_a_runner_object_runs_in_this_process(tmp_path: Path, marks: Path) -> None:
    from labnb.engine.handles import LocalRun
    from labnb.runners.local import ThreadRunner

    lab = make_lab(tmp_path / "storage", marks, runner=ThreadRunner(2))
    search = lab.optimize(Quadratic, {"x": IntDistribution(0, 3)}, 6, seed=1, disable_progress=True)
    assert isinstance(search.run, LocalRun)
    frame = search.trials_dataframe()
    assert (frame["state"] == "COMPLETE").all() and len(frame) == 6
    # Four possible x: repeats share one task, computed once.
    assert len(executions(marks)) == frame["task_id"].nunique() <= 4
    assert frame["cached"].sum() == 6 - frame["task_id"].nunique()


def test_a_search_that_cannot_run_is_refused_before_anything_starts(
    tmp_path: Path, marks: Path
) -> None:
    lab = make_lab(tmp_path / "storage", marks)
    with pytest.raises(SearchError, match="has no field 'y'"):
        lab.optimize(Quadratic, {"y": FloatDistribution(0, 1)}, 3)
    with pytest.raises(SearchError, match="must be an optuna distribution"):
        lab.optimize(Quadratic, {"x": (0, 1)}, 3)
    with pytest.raises(SearchError, match="in the space and fixed at once"):
        lab.optimize(Quadratic, SPACE, 3, fixed={"x": 0.5})
    with pytest.raises(SearchError, match="direction"):
        lab.optimize(Quadratic, SPACE, 3, direction="up")
    lab.optimize(Quadratic, SPACE, 1, direction="maximize", study_name="s", disable_progress=True)
    with pytest.raises(SearchError, match="maximizes; this search asks to minimize"):
        lab.optimize(Quadratic, SPACE, 1, study_name="s")
    with pytest.raises(SearchError, match="local storage"):
        labnb.Lab(storage=None).optimize(Quadratic, SPACE, 3)
    assert len(executions(marks)) == 1  # only the one search that could run ran


def test_a_search_file_gives_the_same_search_as_code(tmp_path: Path, marks: Path) -> None:
    from labnb.search import read_config

    path = tmp_path / "search.yaml"
    path.write_text("search: {n_trials: 4, seed: 0}\npause: 0.0\nx: {low: 0, high: 1.0}\n")
    options = read_config(path)
    assert options == {
        "space": SPACE, "fixed": {"pause": 0.0}, "n_trials": 4, "seed": 0,
    }  # fmt: skip
    lab = make_lab(tmp_path / "storage", marks)
    from_file = lab.optimize(Quadratic, **options, disable_progress=True)
    from_code = lab.optimize(Quadratic, SPACE, 4, fixed={"pause": 0.0}, seed=0)
    assert from_code.run is None and from_code.study.study_name == from_file.study.study_name
    path.write_text("search: {n_trials: 4}\nx: {low: 0, high: 1.0}\ny: {low: 1}\n")
    with pytest.raises(labnb.ConfigError, match=r"search.yaml, line 3: y: a range is"):
        read_config(path)
    path.write_text("search: {n_trials: 4, trials: 3}\nx: [1, 2]\n")
    with pytest.raises(labnb.ConfigError, match=r"line 1: search.trials: not a search setting"):
        read_config(path)


def test_labnb_does_not_import_optuna_and_says_how_to_get_it() -> None:
    script = """
        import sys
        import labnb
        assert "optuna" not in sys.modules, "import labnb imported optuna"
        sys.modules["optuna"] = None  # as if it were not installed
        from optuna.distributions import FloatDistribution
    """
    check = """
        import sys
        sys.modules["optuna"] = None
        import labnb
        from search_tasks import Quadratic
        try:
            labnb.Lab(storage=sys.argv[1]).optimize(Quadratic, {"x": None}, 3)
        except ImportError as error:
            print(error)
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}
    first = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, env=env,
        check=False,
    )  # fmt: skip
    assert "import labnb imported optuna" not in first.stderr
    assert "ModuleNotFoundError" in first.stderr or "ImportError" in first.stderr
    second = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(check), "/tmp/labnb-no-optuna"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert "labnb's hyper-parameter search needs Optuna: pip install 'labnb[optuna]'" in (
        second.stdout
    ), second.stderr


SEARCH_IN_KERNEL = """
import time
import labnb
from optuna.distributions import FloatDistribution

@labnb.task
class Slow:  # defined in the notebook: it reaches the run process by value
    x: float

    def run(self):
        import os
        with open(os.path.join({marks!r}, labnb.task_id(self)), "a") as file:
            file.write(f"{{os.getpid()}}\\n")
        time.sleep(0.4)
        return (self.x - 0.3) ** 2

lab = labnb.Lab(storage={storage!r}, max_workers=2)
search = lab.optimize(Slow, {{"x": FloatDistribution(0, 1)}}, {n}, seed=11, wait={wait})
print(search.study.study_name, search.counts()["complete"])
"""


def test_a_search_goes_on_through_a_kernel_restart_and_is_resumed_without_recomputing(
    kernel: KernelManager,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    marks: Path,
) -> None:
    storage = str(tmp_path / "storage")
    started = execute(
        kernel, SEARCH_IN_KERNEL.format(marks=str(marks), storage=storage, n=10, wait=False)
    )
    deadline = time.time() + 60
    while not executions(marks):
        assert time.time() < deadline, "the search never started a trial"
        time.sleep(0.05)
    kernel.restart_kernel(now=True)  # kills the kernel mid-search
    assert len(executions(marks)) < 10, "the search ended before the restart"
    # The new kernel defines the task again and asks the same search: it
    # follows the search still running (or finds it done), then finds all 10.
    name, complete = execute(
        kernel, SEARCH_IN_KERNEL.format(marks=str(marks), storage=storage, n=10, wait=True)
    ).split()[-2:]
    assert name == started.split()[0] and int(complete) == 10
    again = execute(
        kernel, SEARCH_IN_KERNEL.format(marks=str(marks), storage=storage, n=10, wait=True)
    )
    assert again.split()[-1] == "10"
    assert sorted(executions(marks).values()) == [1] * 10  # no trial ran twice
