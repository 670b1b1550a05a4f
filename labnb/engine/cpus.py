"""How many CPUs this process may really use: the default number of workers.

``os.cpu_count()`` is the host's core count, but in a container (Binder,
JupyterHub, Kubernetes) the process may be limited to far fewer, and one
worker per host core then overloads the CPUs and the memory limit. Limits
are read from the places they are set: CPU affinity, the cgroup v2 CPU quota,
and JupyterHub's ``CPU_LIMIT``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def available_cpus(cgroup_cpu_max: Path = CGROUP_CPU_MAX) -> int:
    limits = [os.cpu_count() or 1]
    if hasattr(os, "sched_getaffinity"):
        limits.append(len(os.sched_getaffinity(0)))
    quota = _cgroup_quota(cgroup_cpu_max)
    if quota is not None:
        limits.append(quota)
    hub_limit = os.environ.get("CPU_LIMIT")
    try:
        if hub_limit:
            limits.append(math.ceil(float(hub_limit)))
    except ValueError:
        pass
    return max(1, min(limits))


def _cgroup_quota(path: Path) -> int | None:
    """``cpu.max`` holds "QUOTA PERIOD" (or "max PERIOD" when unlimited)."""
    try:
        quota, period = path.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return max(1, math.ceil(int(quota) / int(period)))
