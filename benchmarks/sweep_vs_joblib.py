"""A scikit-learn sweep through labnb, joblib and GridSearchCV, side by side.

Usage (from the repo root):
``python benchmarks/sweep_vs_joblib.py [--rounds N] [--where script kernel]``

The workload is issue 17's: 48 ``LogisticRegression`` fits on the digits data
set (16 values of C, 3 stratified folds, the folds GridSearchCV uses), on 2
workers, with scikit-learn imported by the caller first, as a notebook has.

- **cold**: empty storage, first call in the process: labnb ``run_tasks``
  against ``joblib.Parallel(n_jobs=2)`` and ``GridSearchCV(n_jobs=2, refit=False)``.
- **warm**: the same 48 again, all cached: labnb against ``joblib.Memory``.
- **loop**: ten calls in one process, each fitting 4 new values of C (a
  notebook cell rerun): labnb ``run_tasks`` against ``joblib.Parallel``; the
  time per call, and the time from the call to its first fit starting
  ("first").

CPU time is the caller's (``resource.getrusage``, itself and reaped children)
plus, through psutil, every live process below it (joblib's loky workers) and
below labnb's detached run process (its workers): user + system, and their
reaped children's.

Each measurement is a fresh interpreter (``--child``), rounds alternate who
goes first, medians are printed. "script" is a plain single-threaded script
(labnb forks directly); "kernel" is a process with a second thread started
first, as a Jupyter kernel has, so labnb forks from its forkserver (whose
workers import scikit-learn themselves).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).parent
FOLDS = 3
CS = [10 ** (-3 + 5 * i / 15) for i in range(16)]
SWEEP_ITERATIONS = 300
LOOP_ITERATIONS = 100
LOOP_CALLS = 10
LOOP_FITS = 4
WORKERS = 2
MEASURES = ("joblib-cold", "grid-cold", "labnb-cold", "memory-warm", "joblib-loop", "labnb-loop")
FIRST, LATER = slice(0, 1), slice(1, None)
"""The loop's first call (everything cold) and the others."""
GOALS = {"cold": 0.9, "warm": 0.1, "loop": 1.2, "cpu": 1.1}


# --- the child: one measurement in a fresh interpreter ----------------------


def load() -> tuple[Any, Any, list[tuple[Any, Any]]]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import StratifiedKFold

    X, y = load_digits(return_X_y=True)
    return X, y, list(StratifiedKFold(FOLDS).split(X, y))


def fit(X: Any, y: Any, train: Any, test: Any, C: float, iterations: int) -> tuple[float, float]:
    """One fit and its score; and when it started."""
    from sklearn.linear_model import LogisticRegression

    started = time.time()
    warnings.filterwarnings("ignore")  # lbfgs may stop at its iteration limit
    model = LogisticRegression(C=C, tol=1e-6, max_iter=iterations).fit(X[train], y[train])
    return model.score(X[test], y[test]), started


def cpu_seconds(roots: list[int]) -> float:
    """CPU used so far by this process, its reaped children, and every live
    process at or below ``roots`` and below this one."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime
    seen: set[int] = set()
    for root in roots:
        try:
            top = psutil.Process(root)
            tree = (
                [top, *top.children(recursive=True)] if root != os.getpid() else top.children(True)
            )
        except psutil.Error:
            continue
        for process in tree:
            if process.pid in seen:
                continue
            seen.add(process.pid)
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system + times.children_user + times.children_system
    return total


def child(measure: str, storage: str) -> dict[str, Any]:
    import joblib
    import sklearn.linear_model  # noqa: F401 - imported by the caller, as a notebook has

    import labnb

    X, y, folds = load()

    @labnb.task
    class Fit:
        C: float
        fold: int
        iterations: int

        def run(self) -> tuple[float, float]:
            train, test = self.context["folds"][self.fold]
            return fit(self.context["X"], self.context["y"], train, test, self.C, self.iterations)

    sweep = [(C, fold) for C in CS for fold in range(FOLDS)]
    context = {"X": X, "y": y, "folds": folds}
    out: dict[str, Any] = {"method": f"{threading.active_count()} threads"}
    if measure == "grid-cold":
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import GridSearchCV

        model = LogisticRegression(tol=1e-6, max_iter=SWEEP_ITERATIONS)
        search = GridSearchCV(model, {"C": CS}, cv=folds, n_jobs=WORKERS, refit=False)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            search.fit(X, y)
        out["wall"], out["cpu"] = time.perf_counter() - start, cpu_seconds([os.getpid()])
    elif measure == "joblib-cold":
        start = time.perf_counter()
        joblib.Parallel(n_jobs=WORKERS)(
            joblib.delayed(fit)(X, y, *folds[fold], C, SWEEP_ITERATIONS) for C, fold in sweep
        )
        out["wall"], out["cpu"] = time.perf_counter() - start, cpu_seconds([os.getpid()])
    elif measure == "labnb-cold":
        lab = labnb.Lab(storage=storage, max_workers=WORKERS, context=context)
        tasks = [Fit(C, fold, SWEEP_ITERATIONS) for C, fold in sweep]
        start = time.perf_counter()
        lab.run_tasks(tasks, disable_progress=True)
        out["wall"] = time.perf_counter() - start
        out["cpu"] = cpu_seconds([os.getpid(), lab.runs()[-1].pid or 0])
        start = time.perf_counter()
        lab.run_tasks(tasks, disable_progress=True)
        out["warm"] = time.perf_counter() - start
        from labnb.runners.process import start_context

        out["method"] += ", " + start_context().get_start_method()
    elif measure == "memory-warm":
        cached = joblib.Memory(storage, verbose=0).cache(fit)

        def all_fits() -> None:
            joblib.Parallel(n_jobs=WORKERS)(
                joblib.delayed(cached)(X, y, *folds[fold], C, SWEEP_ITERATIONS) for C, fold in sweep
            )

        all_fits()
        start = time.perf_counter()
        all_fits()
        out["warm"] = time.perf_counter() - start
    else:  # the loop: ten reruns of a cell that fits 4 new values of C
        lab = labnb.Lab(storage=storage, max_workers=WORKERS, context=context)
        calls, firsts = [], []
        for call in range(LOOP_CALLS):
            Cs = [0.5 + 0.01 * (call * LOOP_FITS + i) for i in range(LOOP_FITS)]
            start, t0 = time.perf_counter(), time.time()
            if measure == "joblib-loop":
                results = joblib.Parallel(n_jobs=WORKERS)(
                    joblib.delayed(fit)(X, y, *folds[0], C, LOOP_ITERATIONS) for C in Cs
                )
            else:
                done = lab.run_tasks(
                    [Fit(C, 0, LOOP_ITERATIONS) for C in Cs], disable_progress=True
                )
                results = list(done.values())
            calls.append(time.perf_counter() - start)
            firsts.append(min(started for _, started in results) - t0)
        out["loop"], out["first"] = calls, firsts
    if measure.startswith("labnb"):
        out["pids"] = sorted({run.pid for run in lab.runs() if run.pid})
    return out


# --- the parent: rounds of fresh interpreters, then the table ---------------


def measure_once(measure: str, where: str, storage: Path) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--child",
        measure,
        "--storage",
        str(storage),
        "--where",
        where,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        sys.exit(f"\n{measure} ({where}) failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def wait_for_quiet(pids: list[int]) -> None:
    """Let the last child's detached run processes and their workers end (their caller is gone)."""
    deadline = time.time() + 10
    for pid in pids:
        while psutil.pid_exists(pid) and time.time() < deadline:
            time.sleep(0.05)


def ratio(a: float, b: float) -> str:
    return f"{a / b:6.2f}x"


def report(where: str, runs: dict[str, list[dict[str, Any]]]) -> None:
    def median(measure: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[measure])

    def per_call(measure: str, calls: slice = slice(None)) -> float:
        return statistics.median(statistics.mean(run["loop"][calls]) for run in runs[measure])

    def first(measure: str, calls: slice) -> float:
        return statistics.median(statistics.median(run["first"][calls]) for run in runs[measure])

    methods = sorted({run["method"] for measure in runs for run in runs[measure]})
    joblib_cold, grid, labnb_cold = (median(m, "wall") for m in MEASURES[:3])
    print(f"\n{where} ({'; '.join(methods)})")
    print(f"{'workload':<34} {'labnb':>8} {'joblib':>8} {'Grid':>8} {'ratio':>8} {'goal':>6}")
    rows = [
        ("cold: 48 fits (s)", labnb_cold, joblib_cold, grid, "cold"),
        (
            "cold: CPU (s)",
            median("labnb-cold", "cpu"),
            median("joblib-cold", "cpu"),
            median("grid-cold", "cpu"),
            "cpu",
        ),
        (
            "warm: all cached (s; joblib.Memory)",
            median("labnb-cold", "warm"),
            median("memory-warm", "warm"),
            float("nan"),
            "warm",
        ),
        (
            f"loop: per call, {LOOP_FITS} new fits (s)",
            per_call("labnb-loop"),
            per_call("joblib-loop"),
            float("nan"),
            "loop",
        ),
        (
            f"loop: calls 2-{LOOP_CALLS} only (s)",
            per_call("labnb-loop", LATER),
            per_call("joblib-loop", LATER),
            float("nan"),
            "loop",
        ),
    ]
    for name, ours, theirs, grid_value, goal in rows:
        met = "ok" if ours / theirs <= GOALS[goal] else "MISSED"
        print(
            f"{name:<34} {ours:8.3f} {theirs:8.3f} {grid_value:8.3f} {ratio(ours, theirs)}"
            f" {'<= ' + str(GOALS[goal]):>6} {met}"
        )
    print(f"  cold vs GridSearchCV: {ratio(labnb_cold, grid)}")
    print(
        f"  to the first fit: call 1 labnb {first('labnb-loop', FIRST):.3f} s, "
        f"joblib {first('joblib-loop', FIRST):.3f} s; calls 2-{LOOP_CALLS} labnb "
        f"{first('labnb-loop', LATER):.3f} s, joblib {first('joblib-loop', LATER):.3f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--where", nargs="+", choices=("script", "kernel"), default=["script", "kernel"]
    )
    parser.add_argument("--child", choices=MEASURES)
    parser.add_argument("--storage", help="(a child's storage)")
    args = parser.parse_args()
    if args.child:
        if args.where == ["kernel"]:  # a second thread, as a kernel has: labnb uses its forkserver
            threading.Thread(target=threading.Event().wait, daemon=True).start()
        print(json.dumps(child(args.child, args.storage)))
        return
    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, {args.rounds} rounds, medians")
    with tempfile.TemporaryDirectory() as tmp:
        for where in args.where:
            runs: dict[str, list[dict[str, Any]]] = {measure: [] for measure in MEASURES}
            for number in range(args.rounds):
                for measure in MEASURES if number % 2 == 0 else MEASURES[::-1]:
                    storage = Path(tmp, f"{where}-{number}-{measure}")
                    runs[measure].append(measure_once(measure, where, storage))
                    wait_for_quiet(runs[measure][-1].get("pids", []))
                    print(".", end="", file=sys.stderr, flush=True)
            print(file=sys.stderr)
            report(where, runs)


if __name__ == "__main__":
    main()
