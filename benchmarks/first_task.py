"""Time to the first task: a run process (``Lab(runner='process')``) against in-kernel.

Usage (from the repo root): ``python benchmarks/first_task.py [--repeat N] [--no-script]``

``lab.run_tasks`` hands a run to a detached run process when the Lab's runner
is a name; with a ``Runner`` instance it runs in the caller, as labnb 0.1.0
did. Both ways run four ``Stamp`` tasks, defined in ``__main__`` as in a
notebook cell, each writing ``time.time()`` when it starts. Measured, from
``t0 = time.time()`` just before the call: the first task's start and the
call's return. Once with an empty ``context``, once with a 200 MB numpy array
in it (what shipping the context to the run process costs; the header gives
one ``cloudpickle.dumps`` + ``loads`` of it for scale).

Measured in one real Jupyter kernel (the cells run through jupyter_client,
the kernel's threads make labnb fork from its forkserver), and in plain
scripts (a fresh single-threaded interpreter per measurement, which forks
directly). The modes alternate, who goes first flips on each repetition, one
untimed warm-up repetition comes first, every measurement has a fresh storage,
and a run process is waited for to exit before the next measurement starts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from compare_labtech import child_environment
from ipykernel.kernelspec import write_kernel_spec
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

MODES = ("in-kernel", "run-process")
CONTEXTS = ("empty", "200 MB")
TASKS = 4
MAX_WORKERS = 2
BIG_FLOATS = 25_000_000  # 8 bytes each: 200 MB
TIMEOUT_SECONDS = 300

# Run as a notebook's cells are, and as the script's ``python -c`` body: the
# task class lives in ``__main__`` and travels by value.
DEFINITIONS = f"""
import json, os, pickle, statistics, threading, time
import cloudpickle, numpy, psutil
import labnb
from labnb.runners.process import ProcessRunner, start_context

@labnb.task
class Stamp:
    n: int
    stamps: str

    def run(self):
        with open(os.path.join(self.stamps, str(self.n)), "w") as file:
            file.write(repr(time.time()))
        return self.n

def make_lab(mode, storage, big):
    runner = ProcessRunner({MAX_WORKERS}) if mode == "in-kernel" else "process"
    context = {{"big": BIG}} if big else {{}}
    # warm_seconds=0: every measurement starts a run process and workers of its own
    # (a warm start, which skips both, is in sweep_vs_joblib.py).
    return labnb.Lab(storage=storage, runner=runner, max_workers={MAX_WORKERS}, context=context,
                     warm_seconds=0)

def report(lab, stamps, t0, t1):
    starts = [float(open(os.path.join(stamps, name)).read()) for name in os.listdir(stamps)]
    assert len(starts) == {TASKS}, starts
    runs = lab.runs()
    if runs:  # a run process: let it exit before the next measurement
        pid, deadline = runs[-1].pid, time.time() + 30
        while pid and pid != os.getpid() and psutil.pid_exists(pid) and time.time() < deadline:
            try:
                if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.01)
    print(json.dumps({{"first": min(starts) - t0, "total": t1 - t0, "method": METHOD}}))

def pickle_seconds():
    times = []
    for _ in range(3):
        start = time.perf_counter()
        pickle.loads(cloudpickle.dumps({{"big": BIG}}, protocol=pickle.HIGHEST_PROTOCOL))
        times.append(time.perf_counter() - start)
    return statistics.median(times)
"""
MAKE_BIG = f"numpy.random.default_rng(0).random({BIG_FLOATS})"
PREPARE = """
lab = make_lab({mode!r}, {storage!r}, {big!r})
stamps = {stamps!r}
os.makedirs(stamps)
METHOD = start_context().get_start_method() + f"/{{threading.active_count()}} threads"
"""
TIMED = f"""
t0 = time.time()
lab.run_tasks([Stamp(i, stamps) for i in range({TASKS})], disable_progress=True)
t1 = time.time()
"""
REPORT = "report(lab, stamps, t0, t1); del lab"
SCRIPT = DEFINITIONS + (
    "import sys\n"
    "mode, storage, big, stamps = sys.argv[1], sys.argv[2], sys.argv[3] == 'big', sys.argv[4]\n"
    f"BIG = {MAKE_BIG} if big else None\n"
    + PREPARE.replace("{mode!r}", "mode")
    .replace("{storage!r}", "storage")
    .replace("{big!r}", "big")
    .replace("{stamps!r}", "stamps")
    .replace("{{", "{")
    .replace("}}", "}")
    + TIMED
    + REPORT
    + "\n"
)

Measure = Callable[[str, bool, Path, Path], dict[str, Any]]
Times = dict[tuple[str, str], dict[str, list[float]]]
"""``{(context, mode): {"first" | "total": [seconds of each repetition]}}``."""


class Kernel:
    """One Jupyter kernel for this interpreter, its cells run through one client."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        kernels = tmp / "kernels"
        write_kernel_spec(str(kernels / "python3"))
        specs = KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)
        self.manager = KernelManager(kernel_name="python3", kernel_spec_manager=specs)
        # Its own stderr is a warning about TCP; a cell's errors come through the client.
        self.manager.start_kernel(cwd=str(tmp), env=env, stderr=subprocess.DEVNULL)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def execute(self, code: str) -> str:
        """Run one cell; what it printed (an error stops the benchmark)."""
        printed: list[str] = []

        def collect(message: dict) -> None:
            content = message["content"]
            if message["msg_type"] == "stream" and content["name"] == "stdout":
                printed.append(content["text"])
            elif message["msg_type"] == "error":
                printed.append("\n".join(content["traceback"]))

        reply = self.client.execute_interactive(code, timeout=TIMEOUT_SECONDS, output_hook=collect)
        if reply["content"]["status"] != "ok":
            sys.exit(f"\nkernel cell failed:\n{code}\n{''.join(printed)}")
        return "".join(printed)

    def measure(self, mode: str, big: bool, storage: Path, stamps: Path) -> dict[str, Any]:
        self.execute(PREPARE.format(mode=mode, storage=str(storage), big=big, stamps=str(stamps)))
        self.execute(TIMED)
        return json.loads(self.execute(REPORT).strip().splitlines()[-1])

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def script_measure(env: dict[str, str]) -> Measure:
    def measure(mode: str, big: bool, storage: Path, stamps: Path) -> dict[str, Any]:
        flag = "big" if big else "empty"
        command = [sys.executable, "-c", SCRIPT, mode, str(storage), flag, str(stamps)]
        proc = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=TIMEOUT_SECONDS, check=False
        )
        if proc.returncode != 0:
            sys.exit(f"\nscript {mode} {flag} failed ({proc.returncode}):\n{proc.stderr}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    return measure


def benchmark(measure: Measure, repeat: int, tmp: Path, where: str) -> tuple[Times, set[str]]:
    times: Times = {(c, m): {"first": [], "total": []} for c in CONTEXTS for m in MODES}
    methods: set[str] = set()
    for rep in range(-1, repeat):  # -1 is the warm-up
        order = MODES if rep % 2 == 0 else MODES[::-1]
        for context in CONTEXTS:
            for mode in order:
                name = f"{where}-{rep}-{mode}-{context.replace(' ', '')}"
                result = measure(mode, context != "empty", tmp / name, tmp / f"{name}-stamps")
                methods.add(f"{mode}: {result['method']}")
                if rep >= 0:
                    times[(context, mode)]["first"].append(result["first"])
                    times[(context, mode)]["total"].append(result["total"])
                print(".", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return times, methods


def print_table(title: str, times: Times, methods: set[str], pickle_seconds: float) -> None:
    print(f"\n{title} ({', '.join(sorted(methods))})")
    print(f"{'context':<8} {'measure':<14} {'in-kernel':>10} {'run-process':>12} {'ratio':>7}")
    for context in CONTEXTS:
        for what, label in (("first", "first task"), ("total", "run_tasks")):
            here, detached = (statistics.median(times[(context, m)][what]) for m in MODES)
            ratio = detached / here
            print(f"{context:<8} {label:<14} {here:>10.3f} {detached:>12.3f} {ratio:>7.2f}")
    here, detached = (statistics.median(times[("200 MB", m)]["first"]) for m in MODES)
    print(
        f"the run process adds {detached - here:.3f} s to the first task with the 200 MB"
        f" context: {(detached - here) / pickle_seconds:.1f}x one dumps + loads"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="measured runs per cell")
    parser.add_argument("--no-script", action="store_true", help="only measure in a kernel")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="first-task-") as name:
        tmp = Path(name)
        env = child_environment(tmp / "pycache")
        kernel = Kernel(tmp, env)
        try:
            kernel.execute(f"{DEFINITIONS}\nBIG = {MAKE_BIG}")  # held by the kernel throughout
            pickle_seconds = float(kernel.execute("print(pickle_seconds())").strip())
            kernel_times = benchmark(kernel.measure, args.repeat, tmp, "kernel")
        finally:
            kernel.close()
        script_times = None
        if not args.no_script:
            script_times = benchmark(script_measure(env), args.repeat, tmp, "script")
    print(
        f"median of {args.repeat} run(s) per cell, {TASKS} tasks, max_workers={MAX_WORKERS},"
        " seconds from t0 to the first task's start / to run_tasks' return"
    )
    print(
        f"(1-minute load average before the start: {load_before:.2f} on {os.cpu_count()} CPUs;"
        " other load skews the times)"
    )
    print(f"one cloudpickle.dumps + loads of the 200 MB context: {pickle_seconds:.3f} s")
    print_table("Jupyter kernel", *kernel_times, pickle_seconds)
    if script_times is not None:
        print_table("plain script", *script_times, pickle_seconds)


if __name__ == "__main__":
    main()
