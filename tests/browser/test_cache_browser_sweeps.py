"""The cache browser for big sweeps, driven in Chromium as a user drives it.

At 20,000 cached entries: field queries in the filter box (``seed=3``,
``model=svm C>1``, an unreadable one shown as a hint), type counts that follow
the filter, "No matches", the whole header cell as the sort button with ties
in a stable order, a page-size choice and jump-to-page, and "Select all N
matching" uncached in one confirmed action (the kernel removes by the query).

Then a lab whose tasks take a nested dict parameter, in a 1000 px wide window:
one column per key, long values cut with the whole value on hover, the row
actions still on screen, labels as the user wrote them; and the contrast of
every text in both widgets, in each state (a highlighted row, a pressed chip,
a hovered row, the confirmation bar, an error hint), in JupyterLab Light and
Dark. Screenshots of both themes land in ``screenshots/``.
"""

from __future__ import annotations

import sys

import pytest
from contrast import low_contrast
from test_catalog_browser import (
    SETUP,
    TASKS_MODULE,
    Cached,
    _import_tasks,
    build_storage,
    page_ids,
    range_text,
    set_theme,
    show_top,
    until,
)

from labnb.storage import LocalStorage

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

SIZE = 20_000
FIELD_QUERY = "model=svm C>1"


def expected_range(first: int, last: int, total: int) -> str:
    return f"rows {first:,}\u2013{last:,} of {total:,}"


def newest_first(entries: list[Cached]) -> list[Cached]:
    """The browser's default order: newest start first, ties by task id."""
    return sorted(entries, key=lambda e: (-e.started, e.key))


def both_themes(nb, view, name: str) -> None:
    """Screenshots of the browser's top in JupyterLab Light, then Dark (and back)."""
    show_top(view)
    nb.screenshot(f"{name}-light")
    try:
        set_theme(nb, "JupyterLab Dark")
        show_top(view)
        nb.screenshot(f"{name}-dark")
    finally:
        set_theme(nb, "JupyterLab Light")


@pytest.fixture
def storage_20k(jupyter_server, tmp_path):
    tasks_module = _import_tasks(jupyter_server.root_dir)
    try:
        return build_storage(tmp_path / "cache", tasks_module, size=SIZE)
    finally:
        sys.modules.pop(TASKS_MODULE, None)


def test_at_20k_field_queries_header_sort_paging_and_uncache_all_matching(notebook, storage_20k):
    data = storage_20k
    nb = notebook([SETUP, f"lab = labnb.Lab(storage={str(data.path)!r}, runner='serial')\nlab"])
    nb.run_cell(0)
    nb.wait_for_output_text(0, "kernel ready")
    nb.run_cell(1)
    view = nb.cell(1).locator(".labnb-cache-view")
    box = view.get_by_role("searchbox", name="Filter")
    note = view.locator(".labnb-filter-note")
    chips = view.get_by_role("group", name="Task types")

    def state() -> str:
        return f"{range_text(view)!r}, note {note.inner_text()!r}, ids {page_ids(view)[:3]}"

    def search(text: str) -> None:
        box.fill(text)
        box.press("Enter")

    until(lambda: range_text(view) == expected_range(1, 50, SIZE), "the first page", state, 60)
    assert "seed=3" in note.inner_text()  # the syntax hint

    # A field query: seed=3 matches the Fit tasks with seed 3, not every id with a 3.
    seed3 = [e for e in data.entries if e.params.get("seed") == 3]
    search("seed=3")
    until(lambda: range_text(view) == expected_range(1, 50, len(seed3)), "seed=3", state)
    assert note.inner_text() == "Matching seed == 3"
    newest = newest_first(seed3)
    assert page_ids(view) == [e.key for e in newest[:50]]
    assert chips.get_by_role("button", name=f"Fit {len(seed3):,}", exact=True).is_visible()
    assert chips.get_by_role("button", name="Prep 0", exact=True).is_visible()
    assert chips.get_by_role("button", name=f"All types {len(seed3):,}").is_visible()

    # An unreadable query says why and matches nothing.
    search("sedd=3")
    until(lambda: range_text(view) == "No matches", "no matches", state)
    assert note.inner_text().startswith("No field 'sedd': fields are model, seed, C")
    both_themes(nb, view, "unreadable-filter")

    # Two field queries; the whole header cell sorts (clicked far from its text).
    matching = [
        e for e in data.entries if e.params.get("model") == "svm" and e.params.get("C", 0) > 1
    ]
    search(FIELD_QUERY)
    until(lambda: range_text(view) == expected_range(1, 50, len(matching)), "the query", state)
    header = view.get_by_role("button", name="C", exact=True).locator("xpath=..")
    size = header.bounding_box()
    assert size["width"] > 40, "the C header is a proper target"
    header.click(position={"x": size["width"] - 3, "y": size["height"] - 3})
    by_c = sorted(matching, key=lambda e: (e.params["C"], e.started, e.key))
    until(lambda: page_ids(view) == [e.key for e in by_c[:50]], "sorted by C", state)
    assert header.get_attribute("aria-sort") == "ascending"
    by_type = view.get_by_role("button", name="Type", exact=True).locator("xpath=..")
    by_type.click(position={"x": 4, "y": 4})  # every row ties: started, then id
    ties = sorted(matching, key=lambda e: (e.started, e.key))
    until(lambda: page_ids(view) == [e.key for e in ties[:50]], "sorted by type", state)

    # Page size and jump to page.
    view.get_by_role("combobox", name="Rows per page").select_option("200")
    until(lambda: len(page_ids(view)) == 200, "200 rows a page", state)
    page = view.get_by_role("spinbutton", name="Page")
    page.fill("3")
    page.press("Enter")
    third = expected_range(401, min(600, len(matching)), len(matching))
    until(
        lambda: range_text(view) == third and page_ids(view) == [e.key for e in ties[400:600]],
        "page 3",
        state,
    )
    both_themes(nb, view, "field-query-page-3")

    # Select all matching: every Fit task (18,000 or so), uncached in one confirmed action.
    fits = [e for e in data.entries if e.type == "Fit"]
    search("type=Fit")
    until(lambda: range_text(view).endswith(f"of {len(fits):,}"), "type=Fit", state)
    view.get_by_role("checkbox", name="Select all rows on this page").check()
    view.get_by_role("button", name=f"Select all {len(fits):,} matching").click()
    assert view.locator(".labnb-selection-count").inner_text() == (
        f"All {len(fits):,} matching selected"
    )
    view.get_by_role("button", name="Uncache selected").click()
    bar = view.get_by_role("group", name="Confirm uncache")
    assert bar.inner_text().startswith(f"Remove all {len(fits):,} matching tasks from the cache?")
    both_themes(nb, view, "uncache-all-matching-confirm")
    bar.get_by_role("button", name="Confirm").click()
    view.get_by_role("status").filter(
        has_text=f"Removed {len(fits):,} tasks from the cache."
    ).wait_for(timeout=120_000)
    until(lambda: range_text(view) == "No matches", "nothing left matching", state)
    left = LocalStorage(data.path).catalog
    assert left.count() == SIZE - len(fits) and left.count(["Fit"]) == 0
    show_top(view)
    nb.screenshot("uncached-all-matching")


TASKS = """\
import labnb


@labnb.task
class Train:
    model: str
    config: dict

    def run(self):
        print("training", self.model, self.config["depth"])
        return self.config["depth"]
"""

RUN = """\
import labnb
from wide_tasks import Train

CONFIG = {{"depth": 3, "optimizer": {{"name": "adam", "lr": 0.001, "betas": [0.9, 0.999]}},
          "notes": "a long free-text note that no column could show in full " * 2}}
lab = labnb.Lab(storage={storage!r}, max_workers=1)
run = lab.submit([Train(model=m, config={{**CONFIG, "depth": d}})
                  for m in ("svm", "lr") for d in (2, 3, 4)]); run"""


def test_wide_dict_parameters_at_1000px_and_readable_text_in_every_state(
    notebook, jupyter_server, tmp_path
):
    (jupyter_server.root_dir / "wide_tasks.py").write_text(TASKS)
    nb = notebook([RUN.format(storage=str(tmp_path / "s")), "lab"])
    nb.page.set_viewport_size({"width": 1000, "height": 900})
    nb.run_cell(0)
    run_view = nb.cell(0).locator(".labnb-run-view")
    until(
        lambda: run_view.get_attribute("data-state") == "done",
        "the run",
        nb.describe,
        120,
    )
    label = run_view.locator(".labnb-label").first.inner_text()
    assert "config={'depth': " in label and "frozendict" not in label, label
    # Cut, whole on hover, and the run's table no wider than its box (Logs in view).
    assert run_view.locator(".labnb-label").first.get_attribute("title") == label
    fits = run_view.locator(".labnb-scroll").evaluate("el => el.scrollWidth <= el.clientWidth")
    assert fits, "a long label widened the run's table"
    run_view.locator("tbody tr").first.click()  # logs open: the highlighted row
    until(
        lambda: run_view.locator("tr.labnb-selected").count() == 1,
        "a highlighted run row",
        nb.describe,
    )

    nb.run_cell(1)
    view = nb.cell(1).locator(".labnb-cache-view")
    until(lambda: range_text(view) == expected_range(1, 6, 6), "the cache browser", nb.describe)
    heads = view.locator("thead th").all_inner_texts()
    assert {"config.depth", "config.optimizer", "config.notes"} <= {h.strip() for h in heads}
    notes = view.locator("tbody tr").first.locator("td.labnb-param").nth(3)
    cut = notes.locator(".labnb-cut")
    assert cut.evaluate("el => el.scrollWidth > el.clientWidth"), "a long value is cut"
    assert notes.get_attribute("title").startswith("a long free-text note")
    optimizer = view.locator("tbody tr").first.locator("td.labnb-param").nth(2)
    assert optimizer.get_attribute("title") == (
        "{'name': 'adam', 'lr': 0.001, 'betas': [0.9, 0.999]}"
    )
    first = view.locator("tbody tr").first
    uncache = first.get_by_role("button", name="Uncache", exact=True)
    uncache.scroll_into_view_if_needed()
    box = uncache.bounding_box()
    assert box["x"] + box["width"] <= 1000, box
    on_top = uncache.evaluate(
        "b => { const r = b.getBoundingClientRect();"
        " return b.contains(document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2)); }"
    )
    assert on_top, "the row actions are visible, not under other cells"

    # Every state, in both themes: an unreadable filter's hint; then logs open
    # (a highlighted row in both widgets), a pressed chip, a checked and a
    # hovered row, the confirmation bar, a success note.
    view.get_by_role("group", name="Task types").get_by_role("button", name="Train 6").click()
    search = view.get_by_role("searchbox", name="Filter")
    hint = view.locator(".labnb-filter-note")
    problems: dict[str, list] = {}

    def measure(what: str, roots: dict[str, object]) -> None:
        for name, root in roots.items():
            found = low_contrast(root)
            if found:
                problems[f"{what}, {name}"] = found

    for theme in ("JupyterLab Light", "JupyterLab Dark"):
        short = "dark" if "Dark" in theme else "light"
        set_theme(nb, theme)
        search.fill("dpth=3")
        search.press("Enter")
        until(lambda: "No field 'dpth'" in hint.inner_text(), "the hint", nb.describe)
        measure(f"{short}, unreadable filter", {"cache browser": view})
        show_top(view)
        nb.screenshot(f"cache-browser-unreadable-{short}")

        search.fill("config.depth>2")
        search.press("Enter")
        until(lambda: range_text(view) == expected_range(1, 4, 4), "config.depth>2", nb.describe)
        rows = view.locator("tbody tr")
        rows.first.get_by_role("button", name="Logs").click()
        until(lambda: view.locator("tr.labnb-selected").count() == 1, "highlighted", nb.describe)
        rows.nth(1).get_by_role("checkbox").check()
        view.get_by_role("button", name="Uncache selected").click()
        view.get_by_role("group", name="Confirm uncache").wait_for()
        view.get_by_role("button", name="Refresh").click()
        view.get_by_role("status").filter(has_text="Refreshed.").wait_for()
        rows.last.hover()
        measure(f"{short}, rows", {"run view": run_view, "cache browser": view})
        run_view.scroll_into_view_if_needed()
        nb.screenshot(f"run-view-wide-{short}")
        show_top(view)
        nb.screenshot(f"cache-browser-wide-{short}")
        view.get_by_role("button", name="Keep").click()
    set_theme(nb, "JupyterLab Light")
    lines = [f"{where}: {found}" for where, items in problems.items() for found in items]
    assert not problems, "text under 4.5:1:\n" + "\n".join(lines)
