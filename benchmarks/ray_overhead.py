"""Per-task overhead of the Ray runner against the process runner, on the core benchmark's DAG.

    .venv/bin/python benchmarks/ray_overhead.py [--repeat N]

The workload is ``compare_labtech.py``'s *cold* one: 20 ``Agg`` tasks over
1000 trivial ``Leaf`` tasks (``workloads.py``), empty storage, 2 workers, so
the time is almost all per-task overhead. Each number is the median of
``--repeat`` runs.

- process: each run is a fresh interpreter running ``run_workload.py labnb
  cold`` (exactly the core benchmark's measurement, worker start-up included).
- ray: a local Ray instance (2 CPUs) is started once, untimed, and one untimed
  warm-up run starts Ray's worker processes and labnb's output actor; then
  each timed run builds a ``Lab`` on a fresh storage and runs the DAG. This
  is the steady state of a notebook attached to a cluster, where Ray is
  already up. Two variants: ``max_workers=2`` (at most 2 tasks submitted, the
  process runner's bound) and the default (Ray's CPUs bound what runs, and
  ``QUEUED_PER_CPU`` tasks per CPU wait in Ray's queue).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
MAX_WORKERS = 2


def process_run(storage: str) -> float:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": ""}
    out = subprocess.run(
        [sys.executable, str(HERE / "run_workload.py"), "labnb", "cold", storage],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])["seconds"]


def ray_runs(repeat: int) -> dict[str, list[float]]:
    """Median-able times of each Ray variant, on one local Ray instance."""
    os.environ["BENCH_LIBRARY"] = "labnb"
    # Ray workers import ``workloads`` by name, and it picks labnb from the
    # environment; they inherit both from the Ray instance started here.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(HERE), os.environ.get("PYTHONPATH")])
    )
    sys.path.insert(0, str(HERE))
    import ray
    import workloads

    import labnb
    from labnb.runners.ray import RayRunner

    ray.init(num_cpus=MAX_WORKERS, include_dashboard=False, log_to_driver=False)
    expected = sum(range(workloads.LEAVES))
    variants = {
        # The same bound as the process runner: exactly 2 tasks submitted at a time.
        "ray (max_workers=2)": RayRunner(max_workers=MAX_WORKERS),
        # The default: Ray's 2 CPUs bound what runs, 2 more wait in Ray's queue.
        "ray (default)": RayRunner(),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for attempt in range(repeat + 1):
            for name, runner in variants.items():
                with tempfile.TemporaryDirectory() as folder:
                    start = time.perf_counter()
                    lab = labnb.Lab(storage=Path(folder) / "s", runner=runner, notebook=False)
                    tasks = workloads.aggregators()
                    answer = sum(lab.run_tasks(tasks, disable_progress=True).values())
                    seconds = time.perf_counter() - start
                if answer != expected:
                    sys.exit(f"{name}: got {answer}, want {expected}")
                if attempt:  # the first is the warm-up
                    times[name].append(seconds)
    finally:
        ray.shutdown()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    repeat = parser.parse_args().repeat

    sys.path.insert(0, str(HERE))
    os.environ["BENCH_LIBRARY"] = "labnb"
    import workloads

    tasks = workloads.LEAVES + workloads.AGGREGATORS
    print(
        f"cold DAG: {workloads.AGGREGATORS} aggregators over {workloads.LEAVES} leaves "
        f"({tasks} tasks), max_workers={MAX_WORKERS}, median of {repeat}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory() as folder:
        process_run(str(Path(folder) / "warmup"))
        runs = {"process": [process_run(str(Path(folder) / f"s{i}")) for i in range(repeat)]}
    runs.update(ray_runs(repeat))

    medians = {name: statistics.median(values) for name, values in runs.items()}
    print(f"{'runner':<20} {'seconds':>8} {'ms/task':>8}   runs")
    for name, values in runs.items():
        listed = " ".join(f"{value:.2f}" for value in values)
        print(f"{name:<20} {medians[name]:8.2f} {1000 * medians[name] / tasks:8.2f}   {listed}")
    base = medians["process"]
    for name, median in medians.items():
        if name != "process":
            print(
                f"{name}: {1000 * (median - base) / tasks:+.2f} ms per task over the process "
                f"runner (x{median / base:.1f})"
            )


if __name__ == "__main__":
    main()
