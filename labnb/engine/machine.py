"""What this machine offers tasks: its cores, its GPUs and its memory.

GPUs are found with NVML (``nvidia-ml-py``), which reports each device's
memory without starting CUDA. What labnb may use can be narrowed, most
specific first: ``Lab(gpus=[0, 2])`` (or ``gpus=0`` for none, ``gpus=2``
for the first two), then the ``LABNB_GPUS`` environment variable (``"0,2"``,
``""`` for none), then a ``CUDA_VISIBLE_DEVICES`` already set for the
process (a job scheduler's choice is respected). The override also stands
in for GPUs that are not there: tests and benchmarks pack onto simulated
devices exactly as onto real ones.

Device numbers are NVML's (PCI bus order); a task given device 2 sees it
as ``CUDA_VISIBLE_DEVICES=2`` with ``CUDA_DEVICE_ORDER=PCI_BUS_ID``, so
CUDA numbers devices the same way.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psutil

from ..model.resources import Resources, ResourcesError, format_size
from .cpus import available_cpus

GPUS_VARIABLE = "LABNB_GPUS"

GpuChoice = int | Iterable[int] | None
"""``Lab(gpus=...)``: None (discover), a count, or device numbers."""


@dataclass(frozen=True)
class Gpu:
    index: int
    memory: int | None = None
    """Total bytes, when NVML can tell."""
    name: str = ""


class Machine:
    """``cores``: the CPU numbers this process may run on (its affinity);
    ``cpus``: how many it may really use (cgroup quotas: ``cpus.py``);
    ``memory``: bytes. ``gpus`` are the given devices, or else those ``choice``
    names (see the module docstring), found on first use: loading NVML costs
    tens of milliseconds, and most runs need no GPU."""

    def __init__(
        self,
        cores: Iterable[int],
        cpus: int,
        memory: int,
        gpus: Iterable[Gpu] | None = None,
        choice: GpuChoice = None,
    ) -> None:
        self.cores = tuple(cores)
        self.cpus = cpus
        self.memory = memory
        self.chosen = None if gpus is not None else _chosen(choice)
        """The device numbers asked for (checked now), or None for all NVML finds."""
        self._gpus = None if gpus is None else tuple(gpus)

    @property
    def gpus(self) -> tuple[Gpu, ...]:
        if self._gpus is None:
            self._gpus = tuple(_resolve(self.chosen))
        return self._gpus

    def refusal(self, needs: Resources) -> str | None:
        """Why a task with these needs can never run here, or None when it can."""
        if needs.cpus is not None and needs.cpus > self.cpus:
            return f"{needs.cpus} CPUs, and this machine has {self.cpus}"
        if needs.gpus and needs.gpus > len(self.gpus):
            have = (
                f"{len(self.gpus)} ({', '.join(str(gpu.index) for gpu in self.gpus)})"
                if self.gpus
                else f"none (found with NVML, or set by Lab(gpus=...) or {GPUS_VARIABLE})"
            )
            plural = "s" if needs.gpus != 1 else ""
            return f"{needs.gpus} GPU{plural}, and the GPUs labnb may use are {have}"
        if needs.gpus and needs.gpu_memory is not None:
            known = [gpu for gpu in self.gpus if gpu.memory is not None]
            if known and sum(gpu.memory >= needs.gpu_memory for gpu in known) < needs.gpus:  # type: ignore[operator]
                largest = max(gpu.memory for gpu in known)  # type: ignore[type-var]
                return (
                    f"{format_size(needs.gpu_memory)} on each GPU, and the largest has "
                    f"{format_size(largest)}"
                )
        if needs.memory is not None and needs.memory > self.memory:
            return (
                f"{format_size(needs.memory)} of memory, and this machine has "
                f"{format_size(self.memory)}"
            )
        return None

    def check(self, task_name: str, needs: Resources) -> None:
        why = self.refusal(needs)
        if why is not None:
            raise ResourcesError(f"{task_name} can never run here: it needs {why}")


def this_machine(gpus: GpuChoice = None) -> Machine:
    cores = tuple(sorted(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else ()
    cpus = available_cpus()
    return Machine(
        cores=cores or tuple(range(cpus)),
        cpus=cpus,
        memory=psutil.virtual_memory().total,
        choice=gpus,
    )


def usable_gpus(choice: GpuChoice = None) -> list[Gpu]:
    return _resolve(_chosen(choice))


def _resolve(chosen: list[int] | None) -> list[Gpu]:
    found = {gpu.index: gpu for gpu in nvml_gpus()}
    if chosen is None:
        return list(found.values())
    return [found.get(index, Gpu(index)) for index in chosen]


def _chosen(choice: GpuChoice) -> list[int] | None:
    """The device numbers asked for, or None for every GPU NVML finds."""
    if choice is not None:
        if isinstance(choice, bool) or (isinstance(choice, int) and choice < 0):
            raise ResourcesError(
                f"gpus must be a count or a list of device numbers, not {choice!r}"
            )
        if isinstance(choice, int):
            return list(range(choice))
        indexes = list(choice)
        if any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in indexes):
            raise ResourcesError(f"gpus must be device numbers such as [0, 2], not {indexes!r}")
        if len(set(indexes)) != len(indexes):
            raise ResourcesError(f"gpus lists a device twice: {indexes!r}")
        return indexes
    for variable in (GPUS_VARIABLE, "CUDA_VISIBLE_DEVICES"):
        value = os.environ.get(variable)
        if value is None:
            continue
        words = [word.strip() for word in value.split(",") if word.strip()]
        if all(word.isdigit() for word in words):
            return [int(word) for word in words]
        if variable == GPUS_VARIABLE and words != ["none"]:
            raise ResourcesError(
                f"{GPUS_VARIABLE} must be device numbers such as 0,2, not {value!r}"
            )
        if variable == GPUS_VARIABLE:
            return []
        # CUDA_VISIBLE_DEVICES by UUID: NVML's own list, which the UUIDs narrow
        # in ways labnb does not map; every device NVML finds is offered.
    return None


def nvml_gpus() -> list[Gpu]:
    """Every NVIDIA GPU NVML sees; none when the library or the driver is absent."""
    nvml = _nvml()
    if nvml is None:
        return []
    gpus = []
    for index in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        name = nvml.nvmlDeviceGetName(handle)
        gpus.append(
            Gpu(
                index,
                int(nvml.nvmlDeviceGetMemoryInfo(handle).total),
                name.decode() if isinstance(name, bytes) else str(name),
            )
        )
    return gpus


_NVML: list[Any] = []
"""The initialised ``pynvml`` module, or None when there is none (looked up once)."""


def _nvml() -> Any:
    if not _NVML:
        module: Any = None
        with contextlib.suppress(Exception):  # not installed, no driver, no device
            import pynvml

            pynvml.nvmlInit()
            module = pynvml
        _NVML.append(module)
    return _NVML[0]


def gpu_usage(pids: Iterable[int]) -> dict[int, tuple[float | None, float | None]]:
    """GPU utilisation (percent, of the devices each process uses) and GPU memory
    (MiB) of each of ``pids``, where NVML can tell; empty without NVML."""
    nvml = _nvml()
    wanted = set(pids)
    if nvml is None or not wanted:
        return {}
    usage: dict[int, tuple[float | None, float | None]] = {}
    with contextlib.suppress(Exception):
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            utilisation = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            for process in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
                if process.pid in wanted:
                    used = process.usedGpuMemory
                    memory = None if used is None else round(used / 2**20, 1)
                    was_util, was_memory = usage.get(process.pid, (None, None))
                    usage[process.pid] = (
                        max(utilisation, was_util or 0.0),
                        memory if was_memory is None else was_memory + (memory or 0.0),
                    )
    return usage
