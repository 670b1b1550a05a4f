"""Tasks that report what they were given: GPUs (the variables CUDA and ROCm
read), cores and thread limits, with when they ran."""

from __future__ import annotations

import os
import time
from typing import Any

import labnb


def seen(seconds: float) -> dict[str, Any]:
    started = time.time()
    time.sleep(seconds)
    return {
        "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "hip": os.environ.get("HIP_VISIBLE_DEVICES"),
        "order": os.environ.get("CUDA_DEVICE_ORDER"),
        "cores": sorted(os.sched_getaffinity(0)),
        "omp": os.environ.get("OMP_NUM_THREADS"),
        "pid": os.getpid(),
        "started": started,
        "finished": time.time(),
    }


@labnb.task(resources={"gpus": 1})
class OneGpu:
    n: int
    seconds: float = 0.3

    def run(self) -> dict[str, Any]:
        return seen(self.seconds)


@labnb.task
class SizedByParameter:
    """Needs as many GPUs as its ``gpus`` field says (a ``resources()`` method)."""

    gpus: int

    def resources(self) -> dict[str, Any]:
        return {"gpus": self.gpus}

    def run(self) -> dict[str, Any]:
        return seen(0.0)


@labnb.task(resources={"cpus": 1})
class OneCore:
    n: int

    def run(self) -> dict[str, Any]:
        return seen(0.0)


@labnb.task
class NeedsNothing:
    n: int

    def run(self) -> dict[str, Any]:
        return seen(0.0)
