"""What a hyper-parameter search costs beyond its trials: the two designs measured.

Usage (from the repo root): ``python benchmarks/search_overhead.py [--trials 20]
[--seconds 0.5] [--workers 2]``

Each measurement runs ``--trials`` trials of a task that sleeps ``--seconds``
on ``--workers`` workers, in a fresh storage, after one untimed warm-up
search (Optuna and SQLAlchemy imported, as in a notebook's second search):

- ``run per trial``: the ask/tell loop in this process, each trial one
  ``lab.submit`` (a run process of its own), ``workers`` of them in flight,
  a new one asked as soon as one ends: design (a);
- ``lab.optimize``: one run whose task list grows as Optuna suggests trials,
  driven inside the run process: design (b), what labnb does;
- ``lab.optimize, 1 worker``: the same search serially, for the ratio the
  tests check (``tests/test_search.py``: parallel <= 0.6 x serial).

The ideal is ``trials * seconds / workers``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import optuna
from optuna.distributions import FloatDistribution

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from search_tasks import Quadratic

import labnb

SPACE = {"x": FloatDistribution(0.0, 1.0)}


def run_per_trial(lab: labnb.Lab, trials: int, seconds: float, workers: int) -> float:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    start = time.perf_counter()
    in_flight: list[tuple[optuna.Trial, labnb.Run]] = []
    asked = 0
    while asked < trials or in_flight:
        while asked < trials and len(in_flight) < workers:
            trial = study.ask(SPACE)
            task = Quadratic(x=trial.params["x"], pause=seconds)
            in_flight.append((trial, lab.submit([task])))
            asked += 1
        for entry in list(in_flight):
            trial, run = entry
            if run.done:
                in_flight.remove(entry)
                study.tell(trial, next(iter(run.results.values())))
        time.sleep(0.01)
    return time.perf_counter() - start


def optimize(lab: labnb.Lab, trials: int, seconds: float) -> float:
    start = time.perf_counter()
    lab.optimize(Quadratic, SPACE, trials, fixed={"pause": seconds}, seed=0, disable_progress=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp())
    (root / "marks").mkdir()

    def lab(name: str, workers: int = args.workers) -> labnb.Lab:
        context = {"marks": str(root / "marks")}
        return labnb.Lab(storage=root / name, max_workers=workers, context=context)

    lab("warm").optimize(Quadratic, SPACE, 2, seed=0, disable_progress=True)  # imports
    ideal = args.trials * args.seconds / args.workers
    results = {
        "run per trial": run_per_trial(lab("a"), args.trials, args.seconds, args.workers),
        "lab.optimize": optimize(lab("b"), args.trials, args.seconds),
        "lab.optimize, 1 worker": optimize(lab("serial", 1), args.trials, args.seconds),
    }
    print(f"{args.trials} trials of {args.seconds} s on {args.workers} workers (ideal {ideal} s)")
    for name, seconds in results.items():
        print(f"  {name:24} {seconds:6.2f} s")
    ratio = results["lab.optimize"] / results["lab.optimize, 1 worker"]
    print(f"  parallel / serial: {ratio:.2f}")


if __name__ == "__main__":
    main()
