"""``labnb.progress``: a tqdm-like wrapper a task uses inside ``run()`` to report progress."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from .capture import Channel, current_channel

T = TypeVar("T")

REPORT_SECONDS = 0.1
"""At most ten reports a second per loop, whatever the loop's speed."""


def progress(
    iterable: Iterable[T], total: int | None = None, desc: str | None = None
) -> Iterable[T]:
    """Iterate over ``iterable``, reporting how far the running task has got.

    Outside a Lab run it returns ``iterable`` itself, so it costs nothing.
    """
    channel = current_channel()
    if channel is None:
        return iterable
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    return _reporting(iterable, channel, total, desc)


def _reporting(
    iterable: Iterable[T], channel: Channel, total: int | None, desc: str | None
) -> Iterator[T]:
    channel.progress(0, total, desc)
    reported_at = time.monotonic()
    n = 0
    for n, item in enumerate(iterable, 1):
        yield item
        now = time.monotonic()
        if now - reported_at >= REPORT_SECONDS:
            channel.progress(n, total, desc)
            reported_at = now
    channel.progress(n, total, desc)
