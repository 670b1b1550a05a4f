"""The cache browser at 100,000 cached entries, driven as a user drives it.

The storage is built before the notebook opens: 100,000 ``IndexEntry`` records
committed in batches, their ids the real ids of tasks the kernel imports (from
a small module written next to the notebook). No payload files exist: browsing
never reads one, and uncaching removes a missing file without complaint.

In the notebook, ``lab`` shows the cache browser; the test then filters, sorts,
pages and uncaches through the page, checking every page against the data it
generated, and the uncache in the kernel too. Each step's time, from the user's
action until the page shows the result, is printed (``-s`` shows it); speed is
asserted only through generous timeouts: it belongs to benchmarks/.
"""

from __future__ import annotations

import importlib.util
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import labnb
from labnb.storage import IndexEntry, LocalStorage, Tracking

pytestmark = pytest.mark.browser

SIZE = 100_000
BATCH = 10_000
FIT_SHARE = 0.9
MODELS = ("svm", "lr", "rf", "knn")
SEEDS = 10
FILTER = "model=svm seed=7"  # field queries: model svm and seed 7, nothing else
PAGE_SIZE = 50  # the browser's default page
DAY = 86400.0
STEP_TIMEOUT = 30.0  # generous: a step is expected to take well under a second

TASKS_MODULE = "catalog_browser_tasks"
TASKS = '''\
"""Task types of the cache browser test (written next to its notebook)."""

import labnb


@labnb.task
class Fit:
    model: str
    seed: int
    C: float

    def run(self):
        return self.C


@labnb.task
class Prep:
    n: int

    def run(self):
        return self.n
'''

SETUP = f"""\
import time
import labnb
from {TASKS_MODULE} import Fit, Prep
print("kernel ready")
"""


# --------------------------------------------------------------------- the data


@dataclass(frozen=True)
class Cached:
    """One generated cache entry, as the test knows it."""

    key: str
    type: str
    params: dict[str, Any]
    started: float

    def matches_filter(self) -> bool:
        return self.type == "Fit" and (self.params["model"], self.params["seed"]) == ("svm", 7)

    def constructor(self) -> str:
        """Python source building this task in the kernel."""
        args = ", ".join(f"{name}={value!r}" for name, value in self.params.items())
        return f"{self.type}({args})"


@dataclass
class BigStorage:
    path: Path
    entries: list[Cached]  # in commit order, oldest first
    build_seconds: float

    def matching(self) -> list[Cached]:
        return [entry for entry in self.entries if entry.matches_filter()]


def _import_tasks(root: Path) -> Any:
    """Write the task module where the kernel starts and import the same file here."""
    source = root / f"{TASKS_MODULE}.py"
    source.write_text(TASKS)
    spec = importlib.util.spec_from_file_location(TASKS_MODULE, source)
    module = importlib.util.module_from_spec(spec)
    sys.modules[TASKS_MODULE] = module
    spec.loader.exec_module(module)
    return module


def build_storage(path: Path, tasks_module: Any, size: int = SIZE) -> BigStorage:
    """``size`` entries (Fit nine in ten, else Prep) committed ``BATCH`` at a time."""
    started_at = time.perf_counter()
    rng = random.Random(20240607)
    fit, prep = tasks_module.Fit, tasks_module.Prep
    now = time.time()
    seen: set[str] = set()
    storage = LocalStorage(path)
    entries: list[Cached] = []
    batch: list[tuple[str, IndexEntry, str]] = []
    for i in range(size):
        while True:
            if rng.random() < FIT_SHARE:
                task = fit(
                    model=rng.choice(MODELS),
                    seed=rng.randrange(SEEDS),
                    C=round(10 ** rng.uniform(-3, 3), 6),
                )
            else:
                task = prep(n=i)
            key = labnb.task_id(task)
            if key not in seen:  # a repeated (model, seed, C): draw again
                break
        seen.add(key)
        meta = task._labnb_meta
        started = now - 30 * DAY + i * (30 * DAY / size)
        finished = started + rng.uniform(0.05, 30.0)
        params = task._labnb_stored["params"]
        tracking = Tracking()
        if meta.type_name == "Fit":
            accuracy = round(rng.uniform(0.5, 0.99), 4)
            tracking = Tracking(metrics=(("accuracy", accuracy, None, finished),))
        entry = IndexEntry(
            task_id=key,
            type=meta.type_name,
            module=meta.module,
            code_version=meta.code_version,
            params=params,
            format=meta.format.name,
            file=f"{key[:2]}/{key}.pkl",  # never written: browsing reads no payload
            size=rng.randint(100, 100_000),
            checksum=f"{rng.getrandbits(128):032x}",
            started=started,
            finished=finished,
            tracking=tracking,
            run_id=f"run-{i // 1000:05d}",
        )
        entries.append(Cached(key, meta.type_name, dict(params), started))
        batch.append((key, entry, ""))
        if len(batch) == BATCH:
            storage.commit(batch)
            batch = []
    storage.commit(batch)
    assert storage.catalog.count() == size
    return BigStorage(path, entries, time.perf_counter() - started_at)


@pytest.fixture
def big_storage(jupyter_server, tmp_path) -> BigStorage:
    tasks_module = _import_tasks(jupyter_server.root_dir)
    try:
        built = build_storage(tmp_path / "cache", tasks_module)
    finally:
        sys.modules.pop(TASKS_MODULE, None)
    print(f"built {SIZE:,} entries in {built.build_seconds:.1f} s")
    return built


# --------------------------------------------------------------------- the page


def page_ids(view) -> list[str]:
    return view.locator("tbody tr").evaluate_all("trs => trs.map(tr => tr.dataset.taskId)")


def range_text(view) -> str:
    return view.locator(".labnb-range").inner_text()


def expected_range(first: int, last: int, total: int) -> str:
    return f"rows {first:,}\u2013{last:,} of {total:,}"


def first_row(view) -> dict[str, str]:
    """The first row's cells by column header (sort arrows stripped)."""
    return view.evaluate(
        """root => {
          const heads = [...root.querySelectorAll('thead th')].map(
            th => th.textContent.replace(/[\\u25b2\\u25bc]/g, '').trim());
          const tr = root.querySelector('tbody tr');
          const cells = tr ? [...tr.children].map(td => td.textContent.trim()) : [];
          return Object.fromEntries(heads.map((h, i) => [h, cells[i]]));
        }"""
    )


def show_top(view) -> None:
    """Scroll the notebook so the browser's top (toolbar, header, first rows) is in view."""
    view.evaluate("el => el.scrollIntoView({block: 'start'})")


def until(condition, what: str, describe, timeout: float = STEP_TIMEOUT) -> float:
    """Poll ``condition`` every 20 ms; returns the seconds it took to hold."""
    started = time.perf_counter()
    deadline = started + timeout
    while True:
        try:
            if condition():
                return time.perf_counter() - started
        except AssertionError:
            raise
        except Exception:  # an element replaced mid-read: look again
            pass
        if time.perf_counter() > deadline:
            raise AssertionError(f"{what}: not seen after {timeout} s; the page: {describe()}")
        time.sleep(0.02)


def set_theme(nb, name: str) -> None:
    """Switch JupyterLab's theme through the command palette ("Use Theme: <name>"),
    as a user can (this JupyterLab's Settings menu shows no Theme submenu);
    waits until it applies. The choice is saved in the session's user settings."""
    page = nb.page
    page.keyboard.press("Escape")
    page.keyboard.press("ControlOrMeta+Shift+c")
    search = page.locator(".lm-CommandPalette-input")
    search.wait_for()
    search.fill(f"Use Theme: {name}")
    page.locator(".lm-CommandPalette-item", has_text=f"Use Theme: {name}").first.click()
    page.locator(f'body[data-jp-theme-name="{name}"]').wait_for(state="attached", timeout=15_000)
    page.keyboard.press("Escape")
    page.wait_for_timeout(300)  # let the new theme's colours settle before a screenshot


# --------------------------------------------------------------------- the test


def test_cache_browser_at_100k_filter_sort_page_uncache(notebook, big_storage):
    data = big_storage
    newest = sorted(data.entries, key=lambda e: e.started, reverse=True)
    matching = data.matching()
    assert len(matching) > 2 * PAGE_SIZE, "the filter must leave more than two pages"
    by_c = sorted(matching, key=lambda e: e.params["C"])
    fits = sum(1 for e in data.entries if e.type == "Fit")

    nb = notebook(
        [
            SETUP,
            "_t = time.perf_counter()\n"
            f"lab = labnb.Lab(storage={str(data.path)!r}, runner='serial')\n"
            'print(f"Lab opened in {time.perf_counter() - _t:.3f} s")\n'
            "lab",
        ]
    )
    nb.run_cell(0)
    nb.wait_for_output_text(0, "kernel ready")
    view = nb.cell(1).locator(".labnb-cache-view")
    timings: dict[str, float] = {}

    def state() -> str:
        try:
            return f"{range_text(view)!r}, first ids {page_ids(view)[:3]}"
        except Exception as e:
            return f"(unreadable: {e})\n{nb.describe()}"

    def shows(expected: list[Cached], first: int, total: int) -> bool:
        return range_text(view) == expected_range(
            first, first + len(expected) - 1, total
        ) and page_ids(view) == [e.key for e in expected]

    # 1. `lab` shows the browser: total, type counts and the newest 50 rows.
    nb.run_cell(1, wait=False)
    timings["first page"] = until(
        lambda: shows(newest[:PAGE_SIZE], 1, SIZE), "the first page", state, timeout=60
    )
    nb.wait_for_cell(1)
    assert view.locator("tbody tr").first.is_visible()
    assert view.locator("tbody tr").count() == PAGE_SIZE
    chips = view.get_by_role("group", name="Task types")
    assert chips.get_by_role("button", name=f"All types {SIZE:,}").is_visible()
    assert chips.get_by_role("button", name=f"Fit {fits:,}", exact=True).is_visible()
    assert chips.get_by_role("button", name=f"Prep {SIZE - fits:,}", exact=True).is_visible()
    newest_row = first_row(view)
    assert newest_row["Type"] == newest[0].type
    lab_opened = nb.cell_output_text(1).split("Lab opened in ")[1].split()[0]
    show_top(view)
    nb.screenshot("first-page")

    # 2. Type a model and a seed in the filter: the total becomes that count.
    box = view.get_by_role("searchbox", name="Filter")
    box.click()
    box.press_sequentially(FILTER, delay=40)  # as typed; the browser waits 250 ms
    assert box.input_value() == FILTER
    newest_matching = sorted(matching, key=lambda e: e.started, reverse=True)
    timings["filter"] = until(
        lambda: shows(newest_matching[:PAGE_SIZE], 1, len(matching)), "the filtered page", state
    )
    row = first_row(view)
    assert (row["model"], row["seed"]) == ("svm", "7")

    # 3. Sort by C: smallest first; click again: largest first.
    header = view.get_by_role("button", name="C", exact=True)
    header_cell = header.locator("xpath=..")  # the <th> carries aria-sort
    header.click()
    timings["sort by C"] = until(
        lambda: shows(by_c[:PAGE_SIZE], 1, len(matching)), "sorted by C ascending", state
    )
    assert header_cell.get_attribute("aria-sort") == "ascending"
    assert first_row(view)["C"] == f"{by_c[0].params['C']:.6g}"
    show_top(view)
    nb.screenshot("filtered-sorted-ascending")

    descending = by_c[::-1]
    header.click()
    timings["sort descending"] = until(
        lambda: shows(descending[:PAGE_SIZE], 1, len(matching)), "sorted by C descending", state
    )
    assert header_cell.get_attribute("aria-sort") == "descending"
    assert first_row(view)["C"] == f"{descending[0].params['C']:.6g}"

    # 4. The next page: rows 51-100 of the same order.
    view.get_by_role("button", name="Next", exact=True).click()
    page2 = descending[PAGE_SIZE : 2 * PAGE_SIZE]
    timings["next page"] = until(
        lambda: shows(page2, PAGE_SIZE + 1, len(matching)), "page 2", state
    )
    assert not set(page_ids(view)) & {e.key for e in descending[:PAGE_SIZE]}

    # 5. Uncache one row on page 2: it disappears, the next row moves up.
    target, neighbour = page2[2], page2[3]
    target_row = view.locator(f'tbody tr[data-task-id="{target.key}"]')
    target_row.get_by_role("button", name="Uncache").click()
    remaining = [e for e in descending if e is not target]
    timings["uncache"] = until(
        lambda: (
            target_row.count() == 0
            and shows(remaining[PAGE_SIZE : 2 * PAGE_SIZE], PAGE_SIZE + 1, len(matching) - 1)
        ),
        "the page without the uncached row",
        state,
    )
    view.get_by_role("status").filter(has_text="Removed 1 task from the cache.").wait_for()
    show_top(view)
    nb.screenshot("page-2-uncached")

    # ...and in the kernel exactly that entry is gone.
    check = nb.append_and_run(
        f"print('check:', lab.is_cached({target.constructor()}), "
        f"lab.is_cached({neighbour.constructor()}), "
        "lab.catalog.count(), lab.catalog.count(where=\"model == 'svm' and seed == 7\"), "
        f"len(lab.catalog.entries(ids=[{target.key!r}])))"
    )
    nb.wait_for_output_text(check, "check:", timeout=30)
    assert nb.cell_output_text(check).strip() == (
        f"check: False True {SIZE - 1} {len(matching) - 1} 0"
    )
    left = {row["id"] for row in LocalStorage(data.path).catalog.query(limit=None)}
    assert left == {e.key for e in data.entries} - {target.key}

    # 6. The same page in the dark theme (switched back for the tests after this one).
    try:
        set_theme(nb, "JupyterLab Dark")
        show_top(view)
        nb.screenshot("page-2-uncached-dark")
    finally:
        set_theme(nb, "JupyterLab Light")

    print(f"\nbuilt {SIZE:,} entries in {data.build_seconds:.1f} s; Lab() took {lab_opened} s")
    for step, seconds in timings.items():
        print(f"{step:>16}: {seconds * 1000:7.0f} ms")
