"""On a machine with NVIDIA GPUs: two small CUDA tasks, each given one GPU.

Usage (from the repo root): ``python benchmarks/gpu_check.py``

Finds the GPUs with NVML (``nvidia-ml-py``), then runs two ``@labnb.task(
resources={"gpus": 1})`` tasks that multiply matrices with PyTorch (or CuPy,
whichever is installed). Each reports what it saw: ``CUDA_VISIBLE_DEVICES``,
how many devices CUDA shows it, the device's name and PCI bus id, and when it
ran. With two or more GPUs the two run at once on different GPUs; with one
they run one after the other. The script checks exactly that and exits 1 when
it does not hold; where there is no GPU (or neither library) it says why and
exits 0, so it can run anywhere.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import labnb
from labnb.engine.machine import nvml_gpus


def cuda_library() -> str | None:
    for name in ("torch", "cupy"):
        if importlib.util.find_spec(name) is not None:
            return name
    return None


def multiply(library: str, size: int) -> dict[str, Any]:
    """One matrix product on the only GPU this process sees, and what it saw."""
    started = time.time()
    if library == "torch":
        import torch

        x = torch.randn(size, size, device="cuda")
        checksum = float((x @ x).sum())
        torch.cuda.synchronize()
        count = torch.cuda.device_count()
        name = torch.cuda.get_device_name(0)
        bus = torch.cuda.get_device_properties(0).pci_bus_id
    else:
        import cupy

        x = cupy.random.standard_normal((size, size), dtype=cupy.float32)
        checksum = float((x @ x).sum())
        cupy.cuda.Device(0).synchronize()
        count = cupy.cuda.runtime.getDeviceCount()
        name = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
        bus = cupy.cuda.Device(0).pci_bus_id
    time.sleep(1.0)  # long enough that two tasks on two GPUs visibly overlap
    return {
        "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "devices_seen": count,
        "name": name,
        "pci_bus_id": str(bus),
        "checksum_finite": checksum == checksum,
        "started": started,
        "finished": time.time(),
    }


@labnb.task(resources={"gpus": 1}, cache=None)
class Matmul:
    n: int
    library: str
    size: int = 4096

    def run(self) -> dict[str, Any]:
        return multiply(self.library, self.size)


def main() -> int:
    gpus = nvml_gpus()
    if not gpus:
        print("no NVIDIA GPU found with NVML (or nvidia-ml-py is not installed): skipped")
        return 0
    library = cuda_library()
    if library is None:
        print(f"{len(gpus)} GPU(s) found, but neither PyTorch nor CuPy is installed: skipped")
        return 0
    for gpu in gpus:
        print(f"GPU {gpu.index}: {gpu.name}, {(gpu.memory or 0) / 2**30:.0f} GiB")
    with tempfile.TemporaryDirectory() as directory:
        lab = labnb.Lab(storage=Path(directory) / "s", max_workers=2)
        results = lab.run_tasks([Matmul(n=n, library=library) for n in (1, 2)])
    seen = [results[task] for task in sorted(results, key=lambda task: task.n)]
    for n, view in enumerate(seen, 1):
        print(f"task {n}: {view}")
    problems = []
    if any(view["devices_seen"] != 1 for view in seen):
        problems.append("a task saw more (or less) than the one GPU it was given")
    overlap = min(v["finished"] for v in seen) > max(v["started"] for v in seen)
    if len(gpus) >= 2:
        if seen[0]["pci_bus_id"] == seen[1]["pci_bus_id"]:
            problems.append("both tasks ran on the same GPU although two were free")
        if not overlap:
            problems.append("the tasks ran one after the other although two GPUs were free")
    elif overlap:
        problems.append("two tasks ran on the one GPU at once")
    for problem in problems:
        print(f"FAILED: {problem}")
    if not problems:
        placed = "at once, on different GPUs" if len(gpus) >= 2 else "one after the other"
        print(f"OK: each task saw only its GPU; they ran {placed}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
