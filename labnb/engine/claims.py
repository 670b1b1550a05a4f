"""A run's presence in its storage: its record, its heartbeat and its leases.

A task is computed once, whoever asks.

When a run starts it leases, in one transaction, the tasks it plans to
compute. Those another live run (another kernel, a script) already holds are
not computed again: when one comes up, the run waits for the other's result
and takes it from the storage when it appears. Liveness is a heartbeat: a run renews it every
``HEARTBEAT_SECONDS``, and a run silent for ``STALE_SECONDS`` is dead (killed,
out of memory, a laptop that slept), so whoever needs its tasks takes them
over. A lease goes when its task's outcome is committed, so "lease gone, no
entry" means the holder failed or stopped, and the waiting run computes the
task itself.

Only tasks whose results are cached are leased: there is nothing to share
otherwise. Storages that cannot coordinate (fsspec's object stores) grant
every lease, as 0.1.0 behaved.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time

from ..storage import IndexEntry, Storage
from ..storage.index import TaskRow
from ..storage.runs import STALE_SECONDS

log = logging.getLogger("labnb")

HEARTBEAT_SECONDS = 2.0
CHECK_SECONDS = 0.5
"""How often tasks computed elsewhere are looked for."""
CANCEL_CHECK_SECONDS = 0.25
"""How often the run looks whether another process asked it to stop."""


def new_run_id() -> str:
    return secrets.token_hex(6)


class Claims:
    """The leases of one run, and the tasks it waits for other runs to compute."""

    def __init__(self, storage: Storage, run_id: str | None = None) -> None:
        self.storage = storage
        self.index = storage.index
        self.run_id = run_id or new_run_id()
        self.waiting: dict[str, str] = {}
        """Task id -> the run computing it."""
        self._elsewhere: dict[str, str] = {}
        """Tasks of this run another live run held when it started."""
        self._beat_at = 0.0
        self._checked_at = 0.0
        self._cancel_checked_at = 0.0
        self.cancelled = False
        """Another process asked this run to stop (``RunRecord.cancel``)."""
        self.since = time.time()
        """Entries finished before this run began are not its business (``bust_cache``)."""

    def start(self, keys: list[str]) -> None:
        """Record the run and lease, in one transaction, the tasks it may compute."""
        self.index.start_run(self.run_id, os.getpid(), socket.gethostname())
        self._elsewhere = self.index.claim(keys, self.run_id, STALE_SECONDS)
        self._beat_at = time.monotonic()

    def add(self, keys: list[str]) -> None:
        """Lease tasks that join the run after it started (a search's next trials)."""
        if keys:
            self._elsewhere.update(self.index.claim(keys, self.run_id, STALE_SECONDS))

    def finish(self, status: str) -> None:
        try:
            self.index.finish_run(self.run_id, status)
        except Exception:  # never hide why the run ended; the heartbeat just goes stale
            log.exception("labnb could not record the end of run %s", self.run_id)

    def take(self, key: str) -> bool:
        """Whether this run computes ``key`` now; if another live run holds it,
        the task waits for that run's result (``waiting``, ``tick``)."""
        holder = self._elsewhere.pop(key, None)
        if holder is None:
            return True
        self.waiting[key] = holder
        return False

    def record(self, rows: list[TaskRow], output: list[tuple[str, str]]) -> None:
        """What the run knows of these tasks now and what they printed, for its
        record (``lab.runs()``) and whoever follows it."""
        if rows or output:
            self.index.record_tasks(self.run_id, rows, output)

    def release(self, keys: list[str]) -> None:
        if keys:
            self.index.release(keys, self.run_id)

    def _new(self, entry: IndexEntry) -> bool:
        """Committed since this run began (older ones are what ``bust_cache`` replaces)."""
        return entry.finished >= self.since

    def _new_entries(self, keys: list[str]) -> dict[str, IndexEntry]:
        return {k: e for k, e in self.storage.lookup_many(keys).items() if self._new(e)}

    def tick(self) -> tuple[dict[str, tuple[IndexEntry, str]], list[str]]:
        """Renew this run's heartbeat when due, and look at the tasks it waits for:
        returns those another run finished (entry and run) and those now this
        run's to compute (their holder failed, stopped or died)."""
        now = time.monotonic()
        try:
            if now - self._beat_at > HEARTBEAT_SECONDS:
                self._beat_at = now
                self.index.heartbeat(self.run_id)
            if now - self._cancel_checked_at > CANCEL_CHECK_SECONDS:
                self._cancel_checked_at = now
                self.cancelled = self.index.cancel_requested(self.run_id)
        except Exception:  # a busy or failing disk must not end a long run
            log.warning("labnb could not renew the heartbeat of run %s", self.run_id)
        if not self.waiting or now - self._checked_at < CHECK_SECONDS:
            return {}, []
        self._checked_at = now
        found = self._new_entries(list(self.waiting))
        done = {key: (entry, self.waiting.pop(key)) for key, entry in found.items()}
        if not self.waiting:
            return done, []
        still = self.index.claim(list(self.waiting), self.run_id, STALE_SECONDS)
        ours = [key for key in self.waiting if key not in still]
        for key in ours:
            del self.waiting[key]
        # A holder that committed between the two reads: taken from the storage.
        late = self._new_entries(ours)
        done.update({key: (entry, entry.run_id or "another run") for key, entry in late.items()})
        self.release(list(late))
        return done, [key for key in ours if key not in late]
