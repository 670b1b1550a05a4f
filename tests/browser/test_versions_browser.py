"""Cache identity in the browser: edit a ``%%labtask`` cell, rerun, and see why
its tasks ran and which cached entries an older version made.

The first ``scores`` cell runs a sweep; the second is the same cell edited (its
body changed), so its tasks run again. Its run widget's "Why?" on a task says
what differs from the nearest cached entry (the cell's version, and the
edited line as a short diff); the cache
browser (``%labnb``) marks the first cell's entries "older version", with when
that version was last used on hover. Screenshots in the light and the dark
theme land in ``screenshots/``.
"""

from __future__ import annotations

import pytest
from test_run_failures import VIEW, screenshots, wait_over
from test_run_reattach import until

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

SETUP = "%load_ext labnb\n%labnb storage {storage}"
FIRST = "%%labtask scores seed=range(3) --wait\nseed * 10"
EDITED = "%%labtask scores seed=range(3) --wait\nseed * 100"


def test_an_edited_cell_says_why_it_reran_and_marks_the_older_entries(notebook, tmp_path):
    nb = notebook([SETUP.format(storage=tmp_path / "s"), FIRST, EDITED, "%labnb"])
    for index in range(3):
        nb.run_cell(index)
    run = nb.cell(2).locator(VIEW)
    run.get_by_role("progressbar", name="Overall progress").wait_for(timeout=60_000)
    wait_over(run, nb)
    first = run.locator("tbody tr").first
    first.get_by_role("button", name="Why?").click()
    why = first.locator(".labnb-why")
    until(lambda: why.is_visible(), "the answer to Why?", nb, 30)
    text = why.inner_text()
    assert "is not cached" in text and "code_version" in text, text
    # ... and what changed in the cell: its edited line, as a short diff.
    assert "the cell's source changed:\n      -seed * 10\n      +seed * 100" in text, text
    screenshots(nb, {"why": run})

    nb.run_cell(3)
    browser = nb.cell(3).locator(".labnb-cache-view")
    browser.locator("tbody tr").first.wait_for(timeout=60_000)
    marks = browser.locator(".labnb-version-mark:visible")
    until(lambda: marks.count() == 3, "3 entries marked older", nb, 30)
    assert set(marks.all_inner_texts()) == {"older version"}
    assert "last used" in marks.first.get_attribute("title")
    screenshots(nb, {"older": browser})
