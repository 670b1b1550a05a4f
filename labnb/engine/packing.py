"""Which cores, GPUs and memory are free, and which a starting task is given.

Pure bookkeeping, like the scheduler that asks it: ``fits`` says whether a
task's needs are free now, ``grant`` takes them (naming the very GPUs and
cores, so the runner can show the task only those), ``release`` gives them
back. A task that did not declare CPUs counts as one CPU unit and is not
pinned; there are at least as many units as workers, so undeclared tasks
run exactly as many at once as before needs existed.

GPUs are whole unless a task states ``gpu_memory``: then it shares a GPU
with others while their declared memory fits in the device's (when NVML
knows the device's memory; an unknown device is taken whole). Sharing
prefers the fullest GPU that still fits, so large tasks find empty ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model.resources import Resources
from .machine import Machine

CPUS, GPUS, MEMORY = "cpus", "gpus", "memory"
"""The kinds of resource a task can be short of (see ``Pool.short_of``)."""


@dataclass(frozen=True)
class Grant:
    """What one running task holds."""

    units: int = 1
    """CPU units counted against the machine."""
    cores: tuple[int, ...] = ()
    """Cores it is pinned to (only when it declared ``cpus``)."""
    gpus: tuple[int, ...] = ()
    gpu_memory: int | None = None
    """Bytes held on each of its GPUs; None: they are wholly its own."""
    memory: int = 0
    declared: bool = False
    """Whether it declared needs (it then sees only ``gpus``)."""

    def visible_devices(self) -> dict[str, str]:
        """The environment that shows a process only this grant's GPUs (CUDA,
        and ROCm's HIP), numbered as NVML numbers them; empty for a task that
        declared nothing (it sees every GPU, as before needs existed)."""
        if not self.declared:
            return {}
        devices = ",".join(map(str, self.gpus))
        return {
            "CUDA_VISIBLE_DEVICES": devices,
            "HIP_VISIBLE_DEVICES": devices,
            "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        }

    def describe(self) -> str:
        """``"GPU 0,1 · 4 CPUs"``: what the widget shows beside the task."""
        parts = []
        if self.gpus:
            parts.append(f"GPU {','.join(map(str, self.gpus))}")
        if self.cores:
            parts.append(f"{len(self.cores)} CPU{'s' if len(self.cores) != 1 else ''}")
        return " · ".join(parts)


@dataclass
class _Device:
    index: int
    memory: int | None
    used: int = 0
    """Bytes of declared gpu_memory held by the tasks sharing it."""
    holders: int = 0
    whole: bool = False
    """Held by a task that did not say how much memory it needs."""


@dataclass
class Pool:
    units: int
    cores: list[int]
    devices: list[_Device]
    memory: int
    _free_cores: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self._free_cores = list(self.cores)

    @classmethod
    def of(cls, machine: Machine, workers: int, gpus: bool = True) -> Pool:
        """``gpus=False`` when no task needs one: the machine's are not looked up."""
        return cls(
            units=max(machine.cpus, workers),
            cores=list(machine.cores[: max(machine.cpus, 1)]),
            devices=[_Device(gpu.index, gpu.memory) for gpu in machine.gpus] if gpus else [],
            memory=machine.memory,
        )

    def short_of(self, needs: Resources) -> set[str]:
        """The kinds of resource not free enough for ``needs`` now (empty: it fits)."""
        short = set()
        cpus = needs.cpus or 1
        if cpus > self.units or (needs.cpus is not None and needs.cpus > len(self._free_cores)):
            short.add(CPUS)
        if needs.gpus and len(self._devices_for(needs)) < needs.gpus:
            short.add(GPUS)
        if needs.memory is not None and needs.memory > self.memory:
            short.add(MEMORY)
        return short

    def grant(self, needs: Resources) -> Grant:
        """Take ``needs`` (which must fit: ``short_of`` is empty)."""
        cores: tuple[int, ...] = ()
        if needs.cpus is not None:
            cores, self._free_cores = (
                tuple(self._free_cores[: needs.cpus]),
                self._free_cores[needs.cpus :],
            )
        units = needs.cpus or 1
        self.units -= units
        devices = self._devices_for(needs)[: needs.gpus]
        shared = needs.gpu_memory is not None
        for device in devices:
            device.holders += 1
            if shared and device.memory is not None:
                device.used += needs.gpu_memory or 0
            else:
                device.whole = True
        memory = needs.memory or 0
        self.memory -= memory
        return Grant(
            units=units,
            cores=cores,
            gpus=tuple(device.index for device in devices),
            gpu_memory=needs.gpu_memory if shared else None,
            memory=memory,
            declared=needs.declared,
        )

    def release(self, grant: Grant) -> None:
        self.units += grant.units
        self._free_cores = sorted(self._free_cores + list(grant.cores))
        for device in self.devices:
            if device.index in grant.gpus:
                device.holders -= 1
                if grant.gpu_memory is not None and device.memory is not None:
                    device.used -= grant.gpu_memory
                else:
                    device.whole = False
        self.memory += grant.memory

    def _devices_for(self, needs: Resources) -> list[_Device]:
        """Devices a task with ``needs`` could be given now, the best first."""
        if needs.gpu_memory is None:
            return [device for device in self.devices if device.holders == 0]
        fitting = [
            device
            for device in self.devices
            if not device.whole
            and (
                device.holders == 0
                if device.memory is None
                else device.memory - device.used >= needs.gpu_memory
            )
        ]
        # The fullest first: sharing packs small tasks together, leaving empty GPUs.
        return sorted(fitting, key=lambda d: (-(d.used if d.memory is not None else 0), d.index))
