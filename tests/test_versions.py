"""Versions of a task type: entries made by older definitions are listed and removed
in one action, from a Lab and from the CLI."""

from __future__ import annotations

import sys
from pathlib import Path

from test_cli import labnb_command

import labnb

MODULE = """
import labnb

@labnb.task(code_version={version!r})
class Fit:
    depth: int

    def run(self):
        return self.depth
"""


def fit_type(tmp_path: Path, version: str) -> type:
    """``Fit`` as a module defines it, with this ``code_version`` (an edit of its code)."""
    folder = tmp_path / f"v{version}"
    folder.mkdir()
    (folder / "fits.py").write_text(MODULE.format(version=version))
    sys.path.insert(0, str(folder))
    try:
        sys.modules.pop("fits", None)
        import fits  # type: ignore[import-not-found]

        return fits.Fit
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("fits", None)


def test_entries_of_older_versions_are_listed_and_removed(tmp_path: Path):
    lab = labnb.Lab(storage=tmp_path / "s", runner="serial")
    old = fit_type(tmp_path, "1")
    lab.run_tasks([old(depth=d) for d in range(3)], disable_progress=True)
    new = fit_type(tmp_path, "2")
    lab.run_tasks([new(depth=0)], disable_progress=True)
    assert [(v, n) for v, n, _ in lab.catalog.versions(new)] == [("2", 1), ("1", 3)]
    assert lab.uncache_older_versions(new) == 3
    assert [(v, n) for v, n, _ in lab.catalog.versions(new)] == [("2", 1)]
    assert lab.is_cached(new(depth=0))


def test_the_cli_removes_all_but_the_newest_version(tmp_path: Path):
    lab = labnb.Lab(storage=tmp_path / "s", runner="serial")
    old = fit_type(tmp_path, "1")
    lab.run_tasks([old(depth=d) for d in range(2)], disable_progress=True)
    lab.run_tasks([fit_type(tmp_path, "2")(depth=5)], disable_progress=True)
    removed = labnb_command("rm", str(tmp_path / "s"), "--type", "Fit", "--old", "--yes")
    assert removed.returncode == 0 and removed.stdout.strip() == "removed 2 cached result(s)"
    assert [(v, n) for v, n, _ in lab.catalog.versions("Fit")] == [("2", 1)]
    again = labnb_command("rm", str(tmp_path / "s"), "--type", "Fit", "--old", "--yes")
    assert again.stdout.strip() == "no older versions to remove"
    assert labnb_command("rm", str(tmp_path / "s"), "--old").returncode == 2
