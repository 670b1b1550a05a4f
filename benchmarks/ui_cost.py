"""Kernel-side cost of the live widget during a 1000-task run.

The widget's work in the kernel is the ticker thread: folding the run state
into traits and encoding them as the JSON messages a kernel sends. This
script runs 1000 short tasks (each prints a line) on 2 process workers with a
``RunView`` attached, encodes every outgoing widget message to JSON as a
kernel's session would, and reports the CPU time the ticker thread spent
(``time.thread_time`` around each tick) as a share of one core over the run.
Goal: under 5 %.

    .venv/bin/python benchmarks/ui_cost.py [--tasks 1000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

from ipywidgets import Widget

import labnb
from labnb.display.widgets import RunView


@labnb.task
class Step:
    i: int

    def run(self) -> int:
        print(f"step {self.i}")
        time.sleep(0.002)
        return self.i


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    args = parser.parse_args()

    encoded = {"messages": 0, "bytes": 0}

    def send_as_a_kernel_would(widget, msg, buffers=None):
        encoded["messages"] += 1
        encoded["bytes"] += len(json.dumps(msg))

    Widget._send = send_as_a_kernel_would
    tick_cpu = 0.0
    original_tick = RunView.tick

    def timed_tick(self):
        nonlocal tick_cpu
        start = time.thread_time()
        original_tick(self)
        tick_cpu += time.thread_time() - start

    RunView.tick = timed_tick

    with tempfile.TemporaryDirectory() as storage:
        lab = labnb.Lab(storage=storage, max_workers=2)
        started = time.perf_counter()
        run = lab.submit([Step(i=i) for i in range(args.tasks)])
        view = RunView(run.state, cancel=run.cancel)
        view.dispatch("open_logs", {"id": labnb.task_id(Step(i=args.tasks - 1))})
        run.wait()
        time.sleep(0.3)  # the last tick
        wall = time.perf_counter() - started
        view.close()

    share = tick_cpu / wall * 100
    print(
        f"{args.tasks} tasks in {wall:.2f} s; widget messages: {encoded['messages']} "
        f"({encoded['messages'] / wall:.1f}/s, {encoded['bytes'] / 1e6:.2f} MB)"
    )
    print(
        f"widget CPU in the kernel: {tick_cpu * 1000:.0f} ms = {share:.2f} % of one core "
        f"(goal < 5 %) {'OK' if share < 5 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
