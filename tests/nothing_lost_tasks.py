"""Task types for tests/test_nothing_lost.py; importable by worker processes."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import labnb


@labnb.task
class PrintsLines:
    """Prints ``n`` numbered lines. A tiny thread switch interval makes the
    worker's flushing thread run between any two of the task's bytecodes, so
    a race between appending and flushing shows in every run, not one in ten."""

    n: int

    def run(self) -> int:
        sys.setswitchinterval(1e-6)
        try:
            for line in range(self.n):
                print(f"line {line}")
        finally:
            sys.setswitchinterval(0.005)
        return self.n


@labnb.task
class PrintsOddName:
    """Prints a lone surrogate, as printing a non-UTF-8 file name from os.listdir does."""

    n: int = 0

    def run(self) -> str:
        name = b"caf\xe9.txt".decode("utf-8", "surrogateescape")
        print(f"found {name}")
        return name


@labnb.task
class WritesNonText:
    what: str

    def run(self) -> int:
        value: object = b"raw bytes" if self.what == "bytes" else 42
        sys.stdout.write(value)  # type: ignore[arg-type]
        return 1


@labnb.task
class WritesBelowPython:
    """Output that bypasses sys.stdout: fd writes, a subprocess, C's printf."""

    n: int = 0

    def run(self) -> int:
        print("from print")
        os.write(1, b"from os.write 1\n")
        os.write(2, b"from os.write 2 \xff\n")
        subprocess.run(["echo", "from a subprocess"], check=True)
        libc = ctypes.CDLL(None)
        libc.printf(b"from C printf %d\n", 7)  # stays in C's buffer until flushed
        return 1


@labnb.task
class RaisesInterrupt:
    n: int = 0

    def run(self) -> None:
        print("about to interrupt")
        raise KeyboardInterrupt("raised by the task itself")


@labnb.task
class LeavesProcesses:
    """Starts a subprocess and a daemon (``sh -c 'sleep &'``), writes their pids to
    the context's folder, then returns (``linger`` 0) or sleeps ``linger`` s."""

    n: int
    linger: float = 0.0

    def run(self) -> int:
        import time

        child = subprocess.Popen(["sleep", "300"])
        daemon = subprocess.run(
            ["sh", "-c", "sleep 300 > /dev/null 2>&1 & echo $!"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        folder = self.context["pids"]
        with open(os.path.join(folder, f"{self.n}.pids"), "w") as file:
            file.write(f"{child.pid} {daemon}\n")
        time.sleep(self.linger)
        return self.n


@labnb.task
class ReturnsWorkerOnlyObject:
    """Returns an instance of a class from a module only the worker can import
    (a folder it puts on its own sys.path): pickles there, cannot load elsewhere."""

    folder: str

    def run(self) -> object:
        sys.path.insert(0, self.folder)
        import worker_only_module  # type: ignore[import-not-found]

        return worker_only_module.Thing()


@labnb.task(timeout=1.0)
class LimitedNap:
    """Sleeps ``seconds``, with a time limit of one second."""

    seconds: float

    def run(self) -> float:
        import time

        time.sleep(self.seconds)
        return self.seconds


@labnb.task
class ThreadLimits:
    """The native thread pools' sizes a task sees (threadpoolctl)."""

    n: int

    def run(self) -> list[int]:
        import numpy  # noqa: F401 - a BLAS pool, already loaded or loaded now
        from threadpoolctl import threadpool_info

        return sorted({pool["num_threads"] for pool in threadpool_info()})


@labnb.task
class Sized:
    """``size`` random bytes (they do not compress); notes each run in the
    context's 'tally' folder."""

    n: int
    size: int

    def run(self) -> bytes:
        with open(os.path.join(self.context["tally"], str(self.n)), "a") as file:
            file.write("ran\n")
        return os.urandom(self.size)


@labnb.task
class PrintsMuch:
    chars: int

    def run(self) -> int:
        for _ in range(self.chars // 1000):
            print("x" * 999)
        return 1


@labnb.task
class Floods:
    """Prints ``n`` numbered lines as fast as it can, a byte that is not UTF-8 among them."""

    n: int

    def run(self) -> int:
        for line in range(self.n):
            print(f"line {line}")
            if line == self.n // 2:
                sys.stdout.flush()
                os.write(1, b"not utf-8 \xff\n")
        return self.n
