"""A big NumPy result through ``lab.run_tasks``: memory peaks and write/load time
against ``numpy.save`` / ``numpy.load`` of the same array on the same disk.

For each format (the default pickle, and ``NumpyFormat``) a fresh interpreter
(``--case`` is the child's entry point) runs, ``--times`` times, one
process-runner task whose ``run`` returns a ``--gb`` GiB float64 array
(``bust_cache``), then the same task again (now cached: loaded); then it times
``numpy.save`` and ``numpy.load`` of the same array as often, in files next to
the storage. Measured:

- peaks, as multiples of the payload: how much the caller grew (``ru_maxrss``,
  exact), and the run process and the worker (RSS sampled every 20 ms; whole
  processes, an interpreter's own ~0.1 GB included);
- write: from the task's ``run`` returning (its entry's ``finished``) to its
  result file's rename into place (the file's ctime), against ``numpy.save``;
  before each, ``os.sync()``, so neither pays for flushing the other's pages;
- load: the second ``lab.run_tasks`` (look-up, checksum check of the file,
  load), against ``numpy.load``. A ``NumpyFormat`` result loads as a memory
  map, so its pages are read when used.

Times are medians (and, last, the ratio of the best of each side); on a
machine shared with other work, writes to the page cache vary tenfold from one
second to the next, and ``numpy.load`` (whose big allocations ask for huge
pages) sometimes waits seconds for the kernel to find them: rerun before
trusting a ratio.

Goals (issue 11): peaks ≤ 1.3x the payload, times ≤ 1.5x NumPy's.

    .venv/bin/python benchmarks/big_result.py [--gb 1] [--repeat 1] [--times 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

import labnb
from labnb.model.tasks import task_id

FORMATS = ("pickle", "npy")


@labnb.task
class BigPickle:
    gib: float

    def run(self) -> np.ndarray:
        return np.full(int(self.gib * 2**30) // 8, 1.5)


@labnb.task(cache=labnb.NumpyFormat())
class BigNpy:
    gib: float

    def run(self) -> np.ndarray:
        return np.full(int(self.gib * 2**30) // 8, 1.5)


class Peaks:
    """The peak RSS of the run process and of its workers, sampled while a run goes."""

    def __init__(self, storage: Path) -> None:
        self._storage = storage
        self._known = {run.id for run in labnb.Lab(storage=storage, notebook=False).runs()}
        self.run = self.worker = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Peaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        process = None
        while not self._done.wait(0.02):
            with contextlib.suppress(Exception):  # no run yet, or it just ended
                if process is None:
                    lab = labnb.Lab(storage=self._storage, notebook=False)
                    (new,) = [run for run in lab.runs() if run.id not in self._known]
                    process = psutil.Process(new.pid)
                self.run = max(self.run, process.memory_info().rss)
                for worker in process.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        self.worker = max(self.worker, worker.memory_info().rss)


def case(name: str, gib: float, folder: Path, times: int) -> dict[str, float]:
    kind = BigPickle if name == "pickle" else BigNpy
    payload = gib * 2**30
    storage = folder / "s"
    lab = labnb.Lab(storage=storage, max_workers=1, notebook=False)
    lab.run_tasks([BigPickle(gib=0.0), BigNpy(gib=0.0)], disable_progress=True)  # warm up
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    writes, loads, peaks = [], [], []
    for _ in range(times):
        task = kind(gib=gib)  # a new instance each time: a task holds its result
        os.sync()  # each timed write starts with no other write's pages to flush
        with Peaks(storage) as computing:
            result = lab.run_tasks([task], disable_progress=True, bust_cache=True)[task]
        peaks.append(computing)
        assert result.shape == (int(payload) // 8,)
        del result, task
        entry = lab.storage.lookup(task_id(kind(gib=gib)))
        assert entry is not None
        # A write ends with its file renamed into place, which sets its ctime
        # (its mtime is set as each write call begins).
        writes.append(os.stat(storage / "results" / entry.file).st_ctime - entry.finished)
        again = kind(gib=gib)
        started = time.perf_counter()
        result = lab.run_tasks([again], disable_progress=True)[again]
        loads.append(time.perf_counter() - started)
        assert result[0] == result[-1] == 1.5  # not all of it: a memory map's pages count
        del result, again
    caller = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    array = np.full(int(payload) // 8, 1.5)
    saves, numpy_loads = [], []
    for attempt in range(times):
        reference = folder / f"reference-{attempt}.npy"
        os.sync()
        started = time.perf_counter()
        np.save(reference, array)
        saves.append(time.perf_counter() - started)
        started = time.perf_counter()
        np.load(reference)
        numpy_loads.append(time.perf_counter() - started)
    median = statistics.median
    return {
        "caller": caller / payload,
        "run": max(peak.run for peak in peaks) / payload,
        "worker": max(peak.worker for peak in peaks) / payload,
        "write": median(writes) / median(saves),
        "load": median(loads) / median(numpy_loads),
        "best_write": min(writes) / min(saves),
        "best_load": min(loads) / min(numpy_loads),
        "write_s": median(writes),
        "save_s": median(saves),
        "load_s": median(loads),
        "np_load_s": median(numpy_loads),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0, help="GiB of the result")
    parser.add_argument("--repeat", type=int, default=1, help="fresh interpreters per format")
    parser.add_argument("--times", type=int, default=3, help="writes and loads in each")
    parser.add_argument("--case", choices=sorted(FORMATS), help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(case(args.case, args.gb, Path(args.folder), args.times)))
        return
    load = os.getloadavg()[0]
    print(
        f"a {args.gb:g} GiB float64 result, medians of {args.times} writes and loads"
        f" in each of {args.repeat} interpreters (load {load:.1f})"
    )
    print("format  caller  run proc  worker  (goal <= 1.3x)  write  load  (goal <= 1.5x)")
    for name in FORMATS:
        rows = []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(dir=Path(__file__).parent.parent) as folder:
                command = [sys.executable, __file__, "--gb", str(args.gb), "--case", name]
                command += ["--times", str(args.times)]
                out = subprocess.run(
                    [*command, "--folder", folder], check=True, capture_output=True, text=True
                ).stdout
                rows.append(json.loads(out.splitlines()[-1]))
        median = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
        print(
            f"{name:6}  {median['caller']:5.2f}x  {median['run']:7.2f}x  {median['worker']:5.2f}x"
            f"                  {median['write']:4.2f}x {median['load']:4.2f}x"
            f"   ({median['write_s']:.2f} s vs save {median['save_s']:.2f} s,"
            f" {median['load_s']:.2f} s vs load {median['np_load_s']:.2f} s;"
            f" best of each: {median['best_write']:.2f}x, {median['best_load']:.2f}x)"
        )


if __name__ == "__main__":
    main()
