"""Packing GPU tasks: 8 tasks that each need 1 of 2 (simulated) GPUs for 0.5 s.

Usage (from the repo root): ``python benchmarks/gpu_packing.py [--tasks 8] [--seconds 0.5]``

Three ways, in one run, each with a fresh storage and 8 workers:
- **declared**: ``@labnb.task(resources={"gpus": 1})`` on ``Lab(gpus=2)``: labnb
  starts a task only when a GPU is free and shows it only that GPU.
- **undeclared**: the same task without ``resources``: all 8 start at once and
  every one would see every GPU (what 0.1.0 did): fast, and oversubscribed.
- **one at a time**: ``max_workers=1``, the safe choice 0.1.0 left.

For each: wall time, its ratio to the ideal (tasks / GPUs x seconds), and the
most tasks that ran on one GPU at once (from the ``CUDA_VISIBLE_DEVICES``
each task saw and its start and end times). Declared should be about 1.0x the
ideal with 1 per GPU; undeclared packs 4 onto a GPU; one at a time is 2x.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import labnb


def seen(seconds: float) -> tuple[str, float, float]:
    started = time.time()
    time.sleep(seconds)
    return os.environ.get("CUDA_VISIBLE_DEVICES", "0,1"), started, time.time()


@labnb.task(resources={"gpus": 1})
class Declared:
    n: int
    seconds: float

    def run(self) -> tuple[str, float, float]:
        return seen(self.seconds)


@labnb.task
class Undeclared:
    n: int
    seconds: float

    def run(self) -> tuple[str, float, float]:
        return seen(self.seconds)


def most_at_once_on_one_gpu(views: list[tuple[str, float, float]]) -> int:
    """The most tasks that held any one GPU at the same moment."""
    events = []
    for devices, start, end in views:
        for device in devices.split(","):
            events += [(start, 1, device), (end, -1, device)]
    held: dict[str, int] = {}
    most = 0
    for _, change, device in sorted(events, key=lambda e: (e[0], e[1])):
        held[device] = held.get(device, 0) + change
        most = max(most, held[device])
    return most


def measure(task_type: Any, workers: int, tasks: int, seconds: float) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as directory:
        lab = labnb.Lab(storage=Path(directory) / "s", max_workers=workers, gpus=2)
        started = time.perf_counter()
        results = lab.run_tasks(
            [task_type(n=i, seconds=seconds) for i in range(tasks)], disable_progress=True
        )
        wall = time.perf_counter() - started
    return wall, most_at_once_on_one_gpu(list(results.values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=0.5)
    args = parser.parse_args()
    ideal = args.tasks / 2 * args.seconds
    print(f"{args.tasks} tasks x {args.seconds} s on 2 simulated GPUs; ideal {ideal:.2f} s")
    print(f"{'way':<14} {'wall s':>7} {'x ideal':>8} {'most on one GPU':>16}")
    for name, task_type, workers in (
        ("declared", Declared, 8),
        ("undeclared", Undeclared, 8),
        ("one at a time", Undeclared, 1),
    ):
        wall, most = measure(task_type, workers, args.tasks, args.seconds)
        print(f"{name:<14} {wall:>7.2f} {wall / ideal:>8.2f} {most:>16}")


if __name__ == "__main__":
    main()
