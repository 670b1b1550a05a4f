"""The SQLite catalog at 10,000 and 100,000 cached entries, against plain SQLite.

Usage (from the repo root)::

    .venv/bin/python benchmarks/catalog_scale.py [--sizes 10000 100000] [--repeat 5]

For each size, a ``LocalStorage`` in a temporary directory is filled through
``storage.commit`` (batches of ``--batch`` records) with entries of two task
types defined here: ``Fit`` (``model``, ``C``, ``seed`` and a logged metric
``accuracy``) and ``Prep`` (``n``), 9 to 1. Their ids are the real ids of task
objects, so ``lab.is_cached`` finds them; payload files are not written (no
query reads them). The same rows go into a reference: a plain SQLite table in
another file, one column per parameter and metric, with as many indexes as the
catalog has (``started``, ``(type, started)`` and one per column), in the same
journal mode (WAL, ``synchronous = NORMAL``), plus a logs table.

Each measurement runs labnb's way and the reference's way in the same process,
alternating, and prints the median of the repetitions and their ratio. The
browser's measurements go through ``CacheView`` as a notebook would drive it:
every message it sends is JSON-encoded as a kernel's session would. Goals are
labnb's absolute targets (and the ratio for ``cache_table``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ipywidgets import Widget

import labnb
from labnb.display.widgets import DEFAULT_QUERY, CacheView
from labnb.storage import IndexEntry, LocalStorage, Tracking

MODELS = ("svm", "lr", "rf")
FIT_SHARE = 0.9
SEARCH_TEXT = "svm"
SORTS = ("params.C", "metrics.accuracy")
PAGE = 100
IS_CACHED_CALLS = 2000
DAY = 86400.0


@labnb.task
class Fit:
    model: str
    C: float
    seed: int

    def run(self) -> float:
        return 0.0


@labnb.task
class Prep:
    n: int

    def run(self) -> int:
        return self.n


# --- data --------------------------------------------------------------------


def make_task(i: int, rng: random.Random) -> Any:
    """Task number ``i``: a Fit nine times in ten, else a Prep (unique either way)."""
    if rng.random() < FIT_SHARE:
        return Fit(model=rng.choice(MODELS), C=round(10 ** rng.uniform(-3, 3), 6), seed=i)
    return Prep(n=i)


def make_records(size: int, seed: int = 0) -> list[tuple[str, IndexEntry, str]]:
    """``(task id, entry, logs)`` as a run commits them, oldest first, over 30 days."""
    rng = random.Random(seed)
    now = time.time()
    start = now - 30 * DAY
    records = []
    for i in range(size):
        task = make_task(i, rng)
        key = labnb.task_id(task)
        meta = task._labnb_meta
        started = start + i * (30 * DAY / size) + rng.random()
        finished = started + rng.uniform(0.05, 30.0)
        if isinstance(task, Fit):
            accuracy = round(rng.uniform(0.5, 0.99), 4)
            tracking = Tracking(metrics=(("accuracy", accuracy, None, finished),))
            logs = f"fitting {task.model} C={task.C} seed={task.seed}\naccuracy {accuracy}\n"
        else:
            tracking = Tracking()
            logs = f"preparing {task.n} rows\n"
        entry = IndexEntry(
            task_id=key,
            type=meta.type_name,
            module=meta.module,
            code_version=meta.code_version,
            params=task._labnb_stored["params"],
            format=meta.format.name,
            file=f"{key[:2]}/{key}-{i % 2**32:08x}.pkl",
            size=rng.randint(100, 100_000),
            checksum=f"{rng.getrandbits(128):032x}",
            started=started,
            finished=finished,
            tracking=tracking,
            run_id=f"run-{i // 1000:05d}",
        )
        records.append((key, entry, logs))
    return records


# --- the reference: one plain table -------------------------------------------

REF_COLUMNS = (
    "task_id", "type", "module", "code_version", "format", "file", "size", "checksum",
    "started", "finished", "run_id", "mlflow_run_id", "artifacts",
    "model", "C", "seed", "n", "accuracy",
)  # fmt: skip
REF_SCHEMA = """
CREATE TABLE ref (
    task_id TEXT PRIMARY KEY, type TEXT NOT NULL, module TEXT, code_version TEXT,
    format TEXT NOT NULL, file TEXT NOT NULL, size INTEGER NOT NULL, checksum TEXT NOT NULL,
    started REAL NOT NULL, finished REAL NOT NULL, run_id TEXT, mlflow_run_id TEXT,
    artifacts TEXT, model TEXT, C REAL, seed INTEGER, n INTEGER, accuracy REAL
);
CREATE INDEX ref_started ON ref (started);
CREATE INDEX ref_type ON ref (type, started);
CREATE INDEX ref_model ON ref (model);
CREATE INDEX ref_c ON ref (C);
CREATE INDEX ref_seed ON ref (seed);
CREATE INDEX ref_n ON ref (n);
CREATE INDEX ref_accuracy ON ref (accuracy);
CREATE TABLE ref_logs (task_id TEXT PRIMARY KEY, text TEXT NOT NULL, written REAL NOT NULL);
"""
REF_INSERT = f"INSERT INTO ref VALUES ({','.join('?' * len(REF_COLUMNS))})"
PAGE_SIZE = DEFAULT_QUERY["page_size"]
REF_PAGE = f"SELECT * FROM ref ORDER BY started DESC LIMIT {PAGE_SIZE} OFFSET ?"
REF_SEARCH = (
    "(type LIKE :t OR task_id LIKE :t OR model LIKE :t OR CAST(C AS TEXT) LIKE :t "
    "OR CAST(seed AS TEXT) LIKE :t OR CAST(n AS TEXT) LIKE :t)"
)


def ref_connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    return db


def ref_row(entry: IndexEntry) -> tuple[Any, ...]:
    params = entry.params
    return (
        entry.task_id, entry.type, entry.module, entry.code_version, entry.format, entry.file,
        entry.size, entry.checksum, entry.started, entry.finished, entry.run_id,
        entry.mlflow_run_id, entry.artifacts, params.get("model"), params.get("C"),
        params.get("seed"), params.get("n"), entry.tracking.last_metrics().get("accuracy"),
    )  # fmt: skip


def ref_commit(db: sqlite3.Connection, batch: list[tuple[str, IndexEntry, str]]) -> None:
    now = time.time()
    db.execute("BEGIN IMMEDIATE")
    db.executemany("INSERT OR REPLACE INTO ref_logs VALUES (?, ?, ?)",
                   [(key, logs, now) for key, _, logs in batch])  # fmt: skip
    db.executemany(REF_INSERT, [ref_row(entry) for _, entry, _ in batch])
    db.execute("COMMIT")


def ref_screen(db: sqlite3.Connection) -> None:
    """What the browser shows: entries per type, the total and the first page."""
    db.execute("SELECT type, count(*) FROM ref GROUP BY type ORDER BY type").fetchall()
    ref_page(db, 0)


def ref_page(db: sqlite3.Connection, offset: int) -> None:
    db.execute("SELECT count(*) FROM ref").fetchone()
    db.execute(REF_PAGE, (offset,)).fetchall()


def ref_filter(db: sqlite3.Connection) -> None:
    pattern = {"t": f"%{SEARCH_TEXT}%"}
    db.execute(f"SELECT count(*) FROM ref WHERE {REF_SEARCH}", pattern).fetchone()
    db.execute(
        f"SELECT * FROM ref WHERE {REF_SEARCH} ORDER BY started DESC LIMIT {PAGE_SIZE}", pattern
    ).fetchall()


def ref_sort(db: sqlite3.Connection, column: str) -> None:
    db.execute("SELECT count(*) FROM ref").fetchone()
    db.execute(
        f"SELECT * FROM ref ORDER BY {column} DESC, started DESC LIMIT {PAGE_SIZE}"
    ).fetchall()


def ref_uncache(db: sqlite3.Connection, key: str) -> None:
    db.execute("BEGIN IMMEDIATE")
    db.execute("DELETE FROM ref WHERE task_id = ?", (key,))
    db.execute("DELETE FROM ref_logs WHERE task_id = ?", (key,))
    db.execute("COMMIT")
    ref_screen(db)


# --- timing ------------------------------------------------------------------


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def paired(
    ours: Callable[[int], Any], theirs: Callable[[int], Any], repeat: int
) -> tuple[float, float]:
    """Medians of ``repeat`` timings of each, alternating who goes first."""
    times: tuple[list[float], list[float]] = ([], [])
    for rep in range(repeat):
        order = ((0, ours), (1, theirs)) if rep % 2 == 0 else ((1, theirs), (0, ours))
        for side, action in order:
            times[side].append(timed(lambda action=action, rep=rep: action(rep)))
    return statistics.median(times[0]), statistics.median(times[1])


def per_call(calls: list[Callable[[], Any]]) -> float:
    """The median time of one call over many calls."""
    times = []
    for call in calls:
        started = time.perf_counter_ns()
        call()
        times.append(time.perf_counter_ns() - started)
    return statistics.median(times) / 1e9


def set_query(view: CacheView, **changes: Any) -> None:
    view.query = {**DEFAULT_QUERY, **changes}


class Row:
    def __init__(self, name: str, ours: float, theirs: float, goal: str, met: bool | None):
        self.name, self.ours, self.theirs, self.goal, self.met = name, ours, theirs, goal, met


def absolute(seconds: float) -> tuple[str, Callable[[float, float], bool]]:
    return f"<= {duration(seconds)}", lambda ours, _: ours <= seconds


def relative(ratio: float) -> tuple[str, Callable[[float, float], bool]]:
    return f"<= {ratio:g}x", lambda ours, theirs: ours <= ratio * theirs


def duration(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.1f} us"


# --- one size ----------------------------------------------------------------


def benchmark(size: int, repeat: int, batch: int, folder: Path) -> list[Row]:
    rows: list[Row] = []

    def add(name: str, ours: float, theirs: float, goal: Any = None) -> None:
        text, check = goal if goal is not None else ("-", None)
        rows.append(Row(name, ours, theirs, text, None if check is None else check(ours, theirs)))
        print(f"  {name}: {duration(ours)} vs {duration(theirs)}", file=sys.stderr, flush=True)

    started = time.perf_counter()
    records = make_records(size)
    print(
        f"{size:,} entries: {time.perf_counter() - started:.1f} s to make the tasks and entries",
        file=sys.stderr,
        flush=True,
    )
    batches = [records[at : at + batch] for at in range(0, size, batch)]

    # 1. Building: one commit per batch, labnb and the reference alternating by batch.
    storage = LocalStorage(folder / "labnb")
    db = ref_connect(folder / "ref.sqlite")
    db.executescript(REF_SCHEMA)
    build = ([], [])
    for number, chunk in enumerate(batches):
        sides = ((0, storage.commit), (1, lambda chunk: ref_commit(db, chunk)))
        for side, commit in sides if number % 2 == 0 else sides[::-1]:
            build[side].append(timed(lambda commit=commit, chunk=chunk: commit(chunk)))
    storage.index.close()
    add(f"build ({len(batches)} commits of {batch:,})", sum(build[0]), sum(build[1]))

    lab = labnb.Lab(storage=folder / "labnb", runner="serial")
    views: list[CacheView] = []

    def open_view(_: int) -> None:
        views.append(CacheView(lab))

    # 2. Opening the browser: groups, count and the first page.
    ours, theirs = paired(open_view, lambda _: ref_screen(db), repeat)
    add("CacheView(lab) open", ours, theirs, absolute(0.3))
    for extra in views[1:]:
        extra.close()
    view = views[0]

    # 3. What the browser asks for, one query at a time (then back to the default, untimed).
    def browse(**changes: Any) -> Callable[[int], None]:
        def action(_: int) -> None:
            set_query(view, **changes)

        return action

    measurements: list[tuple[str, Callable[[int], None], Callable[[int], None]]] = [
        (f"filter text {SEARCH_TEXT!r}", browse(text=SEARCH_TEXT), lambda _: ref_filter(db)),
        *(
            (
                f"sort by {name}",
                browse(sort=name, descending=True),
                lambda _, column=column: ref_sort(db, column),
            )
            for name, column in ((name, name.partition(".")[2]) for name in SORTS)
        ),
        (f"page {PAGE}", browse(page=PAGE), lambda _: ref_page(db, PAGE * PAGE_SIZE)),
    ]
    for name, ours_action, ref_action in measurements:
        times: tuple[list[float], list[float]] = ([], [])
        for rep in range(repeat):
            set_query(view)  # the default query, untimed
            sides = ((0, ours_action), (1, ref_action))
            for side, action in sides if rep % 2 == 0 else sides[::-1]:
                times[side].append(timed(lambda action=action, rep=rep: action(rep)))
        add(name, statistics.median(times[0]), statistics.median(times[1]), absolute(0.05))
    set_query(view)

    # Uncache one entry on the page shown (a different one each time, both sides).
    newest = [key for key, _, _ in reversed(records)]
    ours, theirs = paired(
        lambda rep: view._uncache({"ids": [newest[rep]]}),
        lambda rep: ref_uncache(db, newest[rep]),
        repeat,
    )
    add("uncache one", ours, theirs, absolute(0.05))
    view.close()

    # 4. The whole table.
    import pandas as pd

    tables = max(2, repeat // 2)
    ours, theirs = paired(
        lambda _: lab.cache_table(), lambda _: pd.read_sql("SELECT * FROM ref", db), tables
    )
    add("cache_table()", ours, theirs, relative(3))

    # 5. is_cached: fresh task objects (their id is computed in the call, as a user's would be).
    picked = random.Random(1).sample(range(repeat, size), min(IS_CACHED_CALLS, size - repeat))
    classes = {"Fit": Fit, "Prep": Prep}

    def fresh_tasks() -> list[Any]:
        return [classes[records[i][1].type](**records[i][1].params) for i in picked]

    found = sum(lab.is_cached(task) for task in fresh_tasks()[:10])
    assert found == 10, f"is_cached found {found} of 10 committed tasks: ids do not match"
    fresh = fresh_tasks()
    keys = [records[i][0] for i in picked]
    gc.collect()
    ours = per_call([lambda task=task: lab.is_cached(task) for task in fresh])
    query = "SELECT * FROM ref WHERE task_id = ?"
    theirs = per_call([lambda key=key: db.execute(query, (key,)).fetchone() for key in keys])
    add(f"is_cached (median of {len(fresh):,})", ours, theirs, absolute(50e-6))

    db.close()
    lab.storage.index.close()
    return rows


def print_table(results: dict[int, list[Row]], repeat: int, load_before: float) -> None:
    print(f"median of {repeat} repetition(s) per cell unless noted; reference: plain SQLite")
    print(
        f"(1-minute load average before the start: {load_before:.2f} on {os.cpu_count()} CPUs;"
        f" SQLite {sqlite3.sqlite_version})"
    )
    header = f"{'entries':>8}  {'measurement':<30} {'labnb':>9} {'reference':>10} {'ratio':>8}"
    print(f"{header} {'goal':>9}  met")
    for size, rows in results.items():
        for row in rows:
            met = "-" if row.met is None else ("yes" if row.met else "NO")
            ratio = row.ours / row.theirs if row.theirs else float("inf")
            print(
                f"{size:>8,}  {row.name:<30} {duration(row.ours):>9} {duration(row.theirs):>10}"
                f" {ratio:>7.1f}x {row.goal:>9}  {met}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=5, help="repetitions of each operation")
    parser.add_argument("--batch", type=int, default=2000, help="records per commit")
    args = parser.parse_args()
    if args.repeat < 1 or args.batch < 1 or min(args.sizes) <= args.repeat:
        parser.error("--repeat and --batch must be positive, each size above --repeat")

    def send_as_a_kernel_would(widget: Any, msg: Any, buffers: Any = None) -> None:
        json.dumps(msg)

    Widget._send = send_as_a_kernel_would
    load_before = os.getloadavg()[0]
    results = {}
    for size in args.sizes:
        with tempfile.TemporaryDirectory(prefix="catalog-scale-") as tmp:
            results[size] = benchmark(size, args.repeat, args.batch, Path(tmp))
    print_table(results, args.repeat, load_before)


if __name__ == "__main__":
    main()
