"""Results made by an older version of their task type's code: "stale", said
plainly, and ``code_version="auto"`` to rerun on edits.

Task types live in a real module file that the tests edit and reload, as a
user edits ``experiments.py`` between two runs (the run process imports it
from disk)."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

import labnb

MODULE = """
import labnb

def scale(x):
    return x * {factor}

@labnb.task(code_version={version!r})
class Fit:
    n: int

    def run(self):
        {comment}
        return scale(self.n) + {offset}
"""


@pytest.fixture
def experiments(tmp_path: Path, monkeypatch):
    """``write(**changes)`` (re)writes and reloads the module; returns it."""
    monkeypatch.syspath_prepend(str(tmp_path))
    name = f"experiments_{tmp_path.name}"
    path = tmp_path / f"{name}.py"

    def write(factor=2, offset=0, comment="", version=None) -> ModuleType:
        source = MODULE.format(factor=factor, offset=offset, comment=comment, version=version)
        path.write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        if name in sys.modules:
            return importlib.reload(sys.modules[name])
        return importlib.import_module(name)

    yield write
    sys.modules.pop(name, None)


def test_an_edited_run_method_marks_its_results_stale_and_says_so_when_reused(
    experiments, tmp_path, capsys
):
    module = experiments()
    lab = labnb.Lab(storage=tmp_path / "s", max_workers=2)
    assert lab.run_tasks([module.Fit(n=n) for n in range(3)], disable_progress=True)
    assert not lab.cache_table()["stale"].any()
    capsys.readouterr()

    module = experiments(comment="# a comment changes nothing")
    assert not lab.cache_table()["stale"].any()
    lab.run_tasks([module.Fit(n=1)], disable_progress=True)
    assert "older version" not in capsys.readouterr().err

    module = experiments(offset=100)  # the body changed: labtech's rule, no rerun...
    results = lab.run_tasks([module.Fit(n=n) for n in range(3)], disable_progress=True)
    assert list(results.values()) == [0, 2, 4]
    # ... but not silently.
    err = capsys.readouterr().err
    assert "labnb: 3 results of Fit were made by an older version of its code" in err
    assert lab.cache_table()["stale"].all()
    assert "older version of its code" in str(lab.explain(module.Fit(n=1)))


def test_a_helper_function_edit_is_seen_through_the_call(experiments, tmp_path):
    module = experiments(factor=2)
    lab = labnb.Lab(storage=tmp_path / "s", max_workers=2)
    lab.run_tasks([module.Fit(n=1)], disable_progress=True)
    experiments(factor=3)
    assert lab.cache_table()["stale"].tolist() == [True]


def test_code_version_auto_reruns_an_edit_but_not_a_comment(experiments, tmp_path):
    module = experiments(version="auto")
    lab = labnb.Lab(storage=tmp_path / "s", max_workers=2)
    first = module.Fit(n=2)
    assert lab.run_task(first, disable_progress=True) == 4
    assert first.code_version.startswith("src:")

    module = experiments(version="auto", comment="# reworded")
    assert labnb.task_id(module.Fit(n=2)) == labnb.task_id(first)
    assert lab.is_cached(module.Fit(n=2))

    module = experiments(version="auto", offset=1)
    edited = module.Fit(n=2)
    assert labnb.task_id(edited) != labnb.task_id(first)
    assert not lab.is_cached(edited)
    assert lab.run_task(edited, disable_progress=True) == 5
    # The hash is the entries' code_version: the older one is removable as such.
    assert lab.uncache_older_versions(module.Fit) == 1
    assert lab.is_cached(edited)
    explained = str(lab.explain(experiments(version="auto", offset=7).Fit(n=2)))
    assert "code_version" in explained, explained
