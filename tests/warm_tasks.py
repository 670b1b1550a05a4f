"""Tasks for the warm-worker tests: each says which worker ran it."""

from __future__ import annotations

import importlib
import os

import labnb


@labnb.task
class ReadsModule:
    """A value of a module the worker imports (not the run process): ``module.VALUE``."""

    module: str
    n: int

    def run(self) -> tuple[int, int]:
        return importlib.import_module(self.module).VALUE, os.getpid()


@labnb.task
class ReadsContext:
    """The context's ``value``."""

    n: int

    def run(self) -> tuple[int, int]:
        return self.context["value"], os.getpid()
