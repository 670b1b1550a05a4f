"""Task types shared by the tests; importable by worker processes."""

from __future__ import annotations

import logging
import os
import sys
import time
from enum import Enum
from pathlib import Path

import labnb


class Colour(Enum):
    RED = "red"
    BLUE = "blue"


@labnb.task
class Square:
    x: int

    def run(self) -> int:
        return self.x * self.x


@labnb.task
class Total:
    parts: list

    def run(self) -> int:
        return sum(part.result for part in self.parts)


@labnb.task
class Stamp:
    """Returns when and where it ran: a rerun returns something new."""

    n: int
    seconds: float = 0.0

    def run(self) -> tuple[float, float, int]:
        started = time.time()
        time.sleep(self.seconds)
        return started, time.time(), os.getpid()


@labnb.task
class Tally:
    """Appends a line to a file in the context's 'tally' directory each time it runs."""

    name: str

    def run(self) -> str:
        folder = Path(self.context["tally"])
        with open(folder / f"{self.name}.txt", "a") as file:
            file.write("ran\n")
        return self.name


@labnb.task
class TallyParent:
    child: Tally
    tag: int

    def run(self) -> str:
        return f"{self.child.result}-{self.tag}"


@labnb.task
class Chatty:
    n: int

    def run(self) -> int:
        for line in range(3):
            print(f"task {self.n} line {line}")
            time.sleep(0.01)
        print(f"task {self.n} to stderr", file=sys.stderr)
        labnb.logger.info(f"task {self.n} logged")
        logging.getLogger("user.module").warning(f"task {self.n} warned")
        return self.n


class Unpicklable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.handle = lambda: None

    def __reduce__(self):
        raise TypeError("cannot pickle this exception")


@labnb.task
class Fails:
    n: int
    unpicklable: bool = False

    def run(self) -> int:
        print(f"about to fail {self.n}")
        if self.unpicklable:
            raise Unpicklable(f"odd failure {self.n}")
        raise ValueError(f"bad value {self.n}")


@labnb.task
class NeedsFailed:
    dependency: Fails

    def run(self) -> int:
        return 1


@labnb.task
class Dies:
    """Kills its own worker process."""

    how: str

    def run(self) -> None:
        if self.how == "exit":
            os._exit(3)
        os.kill(os.getpid(), 9)


@labnb.task
class WithEnum:
    colour: Colour
    options: dict

    def run(self) -> str:
        return self.colour.value


@labnb.task(cache=None)
class Uncached:
    n: int

    def run(self) -> float:
        return time.time()


@labnb.task(max_parallel=1)
class OneAtATime:
    n: int

    def run(self) -> tuple[float, float]:
        started = time.time()
        time.sleep(0.1)
        return started, time.time()


@labnb.task(cache=labnb.NumpyFormat())
class Array:
    n: int

    def run(self):
        import numpy as np

        return np.arange(self.n, dtype=float)


@labnb.task
class ReadsContext:
    key: str

    def run(self) -> object:
        return self.context[self.key]


@labnb.task
class SleepsLong:
    """Writes its worker's pid to the context's 'pids' directory, then sleeps."""

    n: int

    def run(self) -> None:
        Path(self.context["pids"], f"{self.n}.pid").write_text(str(os.getpid()))
        time.sleep(60)


@labnb.task(cache=labnb.ParquetFormat())
class Frame:
    n: int

    def run(self):
        import pandas as pd

        return pd.DataFrame({"n": range(self.n), "square": [i * i for i in range(self.n)]})


@labnb.task(cache=None)
class ReadsEnvironment:
    names: list

    def run(self) -> tuple:
        return tuple(os.environ.get(name) for name in self.names)


@labnb.task
class Counts:
    """Reports progress through labnb.progress."""

    n: int
    pause: float = 0.0

    def run(self) -> int:
        total = 0
        for i in labnb.progress(range(self.n), desc="counting"):
            time.sleep(self.pause)
            total += i
        return total


@labnb.task
class Collides:
    """Fields named like the cache table's own columns: they must not collide with them."""

    id: int
    type: str
    started: float = 0.0
    size_bytes: int = 0

    def run(self) -> str:
        return f"{self.type}-{self.id}"


@labnb.task
class IgnoresTerm:
    """Like SleepsLong, but ignores SIGTERM (as tasks with their own handlers do)."""

    n: int

    def run(self) -> None:
        import signal

        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        Path(self.context["pids"], f"{self.n}.pid").write_text(str(os.getpid()))
        time.sleep(60)


@labnb.task
class SlowTally:
    """Appends a line to the context's 'tally' folder, then sleeps the context's 'seconds'."""

    name: str

    def run(self) -> str:
        with open(Path(self.context["tally"], f"{self.name}.txt"), "a") as file:
            file.write(f"{os.getpid()}\n")
        time.sleep(self.context["seconds"])
        return self.name
