"""What one execution of a task needs: CPUs, GPUs (and memory on each), memory.

A task type declares its needs once, ``@labnb.task(resources={"cpus": 4,
"gpus": 1, "memory": "8G"})``, or per task with a ``resources()`` method
returning the same kind of dict (a large model needs a GPU, a small one does
not). Declarations are checked when they are made, so a typo or a negative
count is an error at the decorator, not a surprise in a worker.

Needs are not parameters: they do not change a task's id (the same result
computed with 2 CPUs or 4 is the same result), like ``max_parallel``.

Sizes are bytes, or strings with binary units as Docker and Slurm read them
(``"512M"``, ``"8G"``, ``"1.5GiB"``: K, M, G, T are powers of 1024).
``gpu_memory`` is memory per GPU: with it, tasks share a GPU as long as their
declared memory fits; without it, a task's GPUs are its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import LabnbError

KEYS = ("cpus", "gpus", "gpu_memory", "memory")
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)


class ResourcesError(LabnbError, ValueError):
    """A task's declared needs are malformed, or more than this machine has."""


@dataclass(frozen=True)
class Resources:
    """One execution's needs. ``cpus=None`` is "undeclared": the task counts as
    one CPU and is not pinned to cores, as every task was before needs existed."""

    cpus: int | None = None
    gpus: int = 0
    gpu_memory: int | None = None
    """Bytes needed on each of its GPUs; None: the GPUs are the task's alone."""
    memory: int | None = None
    """Bytes of host memory; None: not counted."""
    declared: bool = False
    """Whether the task stated its needs (then it sees only the GPUs it is given)."""

    def describe(self) -> str:
        """``"4 CPUs, 1 GPU (8 GiB), 16 GiB"``, for messages."""
        parts = []
        if self.cpus is not None:
            parts.append(f"{self.cpus} CPU{'s' if self.cpus != 1 else ''}")
        if self.gpus:
            each = f" ({format_size(self.gpu_memory)} each)" if self.gpu_memory else ""
            parts.append(f"{self.gpus} GPU{'s' if self.gpus != 1 else ''}{each}")
        if self.memory is not None:
            parts.append(f"{format_size(self.memory)} of memory")
        return ", ".join(parts) or "nothing special"


UNDECLARED = Resources()


def parse_resources(value: Mapping[str, Any] | Resources | None, owner: str) -> Resources:
    """A declaration checked and normalised; ``owner`` names it in errors."""
    if value is None:
        return UNDECLARED
    if isinstance(value, Resources):
        return value
    if not isinstance(value, Mapping):
        raise ResourcesError(
            f"{owner}: resources must be a dict such as {{'cpus': 4, 'gpus': 1}}, "
            f"not {type(value).__name__}"
        )
    unknown = [key for key in value if key not in KEYS]
    if unknown:
        raise ResourcesError(
            f"{owner}: unknown resource {unknown[0]!r}; known ones are {', '.join(KEYS)}"
        )
    cpus = _count(value, "cpus", owner, minimum=1)
    gpus = _count(value, "gpus", owner, minimum=0)
    gpu_memory = _size(value, "gpu_memory", owner)
    if gpu_memory is not None and not gpus:
        raise ResourcesError(f"{owner}: gpu_memory is memory per GPU, but no gpus are asked for")
    return Resources(
        cpus=cpus,
        gpus=gpus or 0,
        gpu_memory=gpu_memory,
        memory=_size(value, "memory", owner),
        declared=True,
    )


def parse_size(value: Any) -> int:
    """Bytes from an int or a string such as ``"8G"``; ValueError when it is neither."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value!r} is negative")
        return value
    match = _SIZE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{value!r} is not a size such as 8G, 512M or a number of bytes")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def format_size(size: int | None) -> str:
    if size is None:
        return "?"
    for unit in ("T", "G", "M", "K"):
        if size >= _UNITS[unit]:
            return f"{size / _UNITS[unit]:.3g} {unit}iB"
    return f"{size} B"


def _count(value: Mapping[str, Any], key: str, owner: str, minimum: int) -> int | None:
    count = value.get(key)
    if count is None:
        return None
    if isinstance(count, bool) or not isinstance(count, int) or count < minimum:
        raise ResourcesError(
            f"{owner}: {key} must be a whole number of at least {minimum}, not {count!r}"
        )
    return count


def _size(value: Mapping[str, Any], key: str, owner: str) -> int | None:
    size = value.get(key)
    if size is None:
        return None
    try:
        parsed = parse_size(size)
    except ValueError as exc:
        raise ResourcesError(f"{owner}: {key}: {exc}") from None
    if parsed == 0:
        raise ResourcesError(f"{owner}: {key} must be more than 0")
    return parsed
