"""``%load_ext labnb``, ``%%labtask`` and ``%labnb`` in IPython's own InteractiveShell."""

from __future__ import annotations

import time
from datetime import datetime

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from sample_tasks import Stamp

import labnb
from labnb.magics.ipython import status_text


@pytest.fixture
def shell(tmp_path):
    shell = InteractiveShell.instance()
    shell.reset(new_session=False)
    shell.run_line_magic("load_ext", "labnb")
    shell.run_line_magic("labnb", f"storage {tmp_path / 'default'}")
    shell.user_ns["fast"] = labnb.Lab(storage=tmp_path / "fast", runner="serial")
    shell.run_cell("import time\nimport numpy as np\nX = np.arange(6.0)")
    yield shell
    shell.run_line_magic("unload_ext", "labnb")


def cell(shell, line, body):
    """Run a %%labtask cell; errors surface as exceptions, as a user would see them."""
    return shell.run_cell_magic("labtask", line, body)


def test_load_twice_and_unload(shell):
    shell.run_line_magic("load_ext", "labnb")
    shell.run_line_magic("reload_ext", "labnb")
    assert "labtask" in shell.magics_manager.magics["cell"]
    shell.run_line_magic("unload_ext", "labnb")
    assert "labtask" not in shell.magics_manager.magics["cell"]
    assert "labnb" not in shell.magics_manager.magics["line"]
    shell.run_line_magic("load_ext", "labnb")
    assert "labnb" in shell.magics_manager.magics["line"]


def test_sweep_runs_every_combination_in_worker_processes(shell):
    cell(shell, "scores seed=range(3) C=[0.5, 2.0] --wait", "float(X.sum() * C + seed)")
    scores = shell.user_ns["scores"]
    assert isinstance(scores, pd.Series) and len(scores) == 6
    assert scores.index.names == ["seed", "C"]
    assert scores.loc[(2, 2.0)] == 15.0 * 2.0 + 2
    assert scores.name == "scores"


def test_fixed_values_and_one_sweep(shell):
    cell(shell, "shifted offset=[1, 2] scale=10 --lab fast --wait", "X.sum() * scale + offset")
    shifted = shell.user_ns["shifted"]
    assert list(shifted.index) == [1, 2] and shifted.index.name == "offset"
    assert shifted.tolist() == [151.0, 152.0]


def test_dict_results_become_a_dataframe(shell):
    cell(shell, "stats n=[2, 3] --lab fast --wait", "{'total': X[:n].sum(), 'n': n}")
    stats = shell.user_ns["stats"]
    assert isinstance(stats, pd.DataFrame)
    assert stats.loc[3, "total"] == 3.0 and list(stats.columns) == ["total", "n"]


def test_a_widened_sweep_says_what_is_new_and_what_is_reused(shell, capsys):
    cell(shell, "grown k=[1, 2] --lab fast --wait", "k * 2")
    assert "labnb: grown: 2 new parameter combinations, 0 reused" in capsys.readouterr().out
    cell(shell, "grown k=[1, 2, 3] --lab fast --wait", "k * 2")
    assert "labnb: grown: 1 new parameter combination, 2 reused" in capsys.readouterr().out
    assert shell.user_ns["grown"].tolist() == [2, 4, 6]


def test_older_versions_are_counted_and_removed_in_one_action(shell, capsys):
    cell(shell, "versioned k=[1, 2] --wait", "k * 1")
    cell(shell, "versioned k=[1, 2] --wait", "k * 10")  # the body changed: a new version
    shell.run_line_magic("labnb", "status")
    status = capsys.readouterr().out
    assert "versioned: 2 of the current version, 2 of older versions" in status
    shell.run_line_magic("labnb", "uncache versioned --old")
    assert "removed 2 cached result(s) of older versions" in capsys.readouterr().out
    lab = shell.run_line_magic("labnb", "")
    assert [count for _, count, _ in lab.catalog.versions("versioned")] == [2]
    assert shell.user_ns["versioned"].tolist() == [10, 20]
    with pytest.raises(UsageError, match="run the %%labtask cell 'never' first"):
        shell.run_line_magic("labnb", "uncache never --old")


def test_explain_names_the_changed_cell_line_and_the_changed_inputs(shell, capsys):
    shell.run_cell("def helper(v):\n    return v + 1\nY = np.zeros(3)")
    cell(shell, "why k=[1, 2] --wait", "score = helper(k) + X.sum()\nscore * 2")
    # X's content, helper's source and one line of the body change; Y is newly read.
    shell.run_cell("X = np.arange(7.0)\ndef helper(v):\n    return v + 2")
    edited = "# a comment\nscore = helper(k) + X.sum() + Y.sum()\nscore * 2"
    cell(shell, "why k=[1, 2] --wait", edited)
    capsys.readouterr()
    shell.run_line_magic("labnb", "explain why k=1")
    assert "is cached: computed" in capsys.readouterr().out
    shell.run_line_magic("labnb", "explain why k=5")
    text = capsys.readouterr().out
    assert "is not cached. The nearest cached entries of its type differ in:" in text
    assert "params.k: 1 cached, 5 now" in text
    older = text[text.index("; code_version: ") :].splitlines()[1:7]
    assert older == [
        "    the cell's source changed:",
        "      -score = helper(k) + X.sum()",
        "      +score = helper(k) + X.sum() + Y.sum()",
        "    X: content changed",
        "    Y: newly read by the cell",
        "    helper: source changed",
    ]
    with pytest.raises(UsageError, match="run the %%labtask cell 'never' first"):
        shell.run_line_magic("labnb", "explain never k=1")
    with pytest.raises(UsageError, match="unexpected keyword argument 'j'"):
        shell.run_line_magic("labnb", "explain why j=1")


def test_cache_hit_and_invalidation(shell):
    body = "time.time() + X.sum() * 0 + k"
    cell(shell, "stamp k=[1, 2] --lab fast --wait", body)
    first = shell.user_ns["stamp"].copy()
    cell(shell, "stamp k=[1, 2] --lab fast --wait", body)
    pd.testing.assert_series_equal(shell.user_ns["stamp"], first)  # served from the cache

    # Comments, blank lines and formatting are not part of the key: nothing reruns.
    cell(shell, "stamp k=[1, 2] --lab fast --wait", "# a note\n\n" + body.replace(" + ", "+"))
    pd.testing.assert_series_equal(shell.user_ns["stamp"], first)

    body += " + 0"  # a real edit of the body reruns every combination
    cell(shell, "stamp k=[1, 2] --lab fast --wait", body)
    edited = shell.user_ns["stamp"].copy()
    assert (edited != first).all()

    shell.run_cell("X = np.arange(7.0)")
    cell(shell, "stamp k=[1, 2] --lab fast --wait", body)
    assert (shell.user_ns["stamp"] != edited).all()

    cell(shell, "stamp k=[1, 2, 3] --lab fast --wait", body)
    grown = shell.user_ns["stamp"]
    assert grown.loc[1] == shell.user_ns["stamp"].loc[1]
    assert len(grown) == 3

    cell(shell, "stamp k=[1] --lab fast --wait --bust-cache", body)
    assert shell.user_ns["stamp"].loc[1] != grown.loc[1]


def test_functions_and_values_read_by_the_cell_are_shipped(shell):
    shell.run_cell("def helper(v):\n    return v * FACTOR\nFACTOR = 3")
    cell(shell, "helped v=[1, 2] --wait", "helper(v)")
    assert shell.user_ns["helped"].tolist() == [3, 6]
    shell.run_cell("FACTOR = 4")
    cell(shell, "helped v=[1, 2] --wait", "helper(v)")
    assert shell.user_ns["helped"].tolist() == [4, 8]


def test_a_helpers_comments_and_docstring_do_not_rerun_the_cell(shell):
    shell.run_cell("import time\ndef helper(v):\n    return v + time.time()")
    cell(shell, "helped v=[1, 2] --lab fast --wait", "helper(v)")
    first = shell.user_ns["helped"].copy()
    shell.run_cell(
        'def helper(v):\n    """Now documented."""\n    # and commented\n    return v+time.time()'
    )
    cell(shell, "helped v=[1, 2] --lab fast --wait", "helper(v)")
    pd.testing.assert_series_equal(shell.user_ns["helped"], first)  # reused
    shell.run_cell("def helper(v):\n    return v * 2 + time.time()")
    cell(shell, "helped v=[1, 2] --lab fast --wait", "helper(v)")
    assert (shell.user_ns["helped"] != first).all()  # its code changed: rerun


def test_unfingerprintable_values_are_named_and_can_be_ignored(shell):
    shell.run_cell("class Holder:\n    pass\nholder = Holder()\nholder.get = lambda: 5")
    with pytest.raises(UsageError, match=r"cannot fingerprint 'holder'.*--ignore holder"):
        cell(shell, "held n=[1] --lab fast --wait", "holder.get() + n")
    assert "held" not in shell.user_ns
    cell(shell, "held n=[1] --lab fast --wait --ignore holder", "holder.get() + n")
    assert shell.user_ns["held"].tolist() == [6]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("bad n=[1] --frobnicate", "unknown option --frobnicate"),
        ("bad n=undefined_name", "n=undefined_name: NameError"),
        ("bad n=1/0", "ZeroDivisionError"),
        ("bad 2n=[1]", "'2n' is not a valid parameter name"),
        ("class n=[1]", "'class' is not a valid task name"),
        ("bad n", "expected name=value"),
        ("bad n=[object()]", "bad.n: parameter values must be"),
        ("bad n=[1] --max-parallel many", "--max-parallel takes a whole number"),
        ("bad n=[1] --lab nowhere", "no labnb.Lab named 'nowhere'"),
        ("bad n=[1", "unbalanced"),
        ("", "usage"),
    ],
)
def test_bad_lines_give_one_line_errors_and_run_nothing(shell, line, message):
    with pytest.raises(UsageError, match=message) as error:
        cell(shell, line, "n")
    assert "\n" not in str(error.value)
    assert "bad" not in shell.user_ns
    assert len(shell.user_ns["fast"].cache_table()) == 0


def test_background_cell_returns_a_run_then_the_results(shell):
    cell(shell, "later n=[1, 2, 3] --lab fast", "n * 10")
    run = shell.user_ns["later"]
    if isinstance(run, labnb.Run):
        run.wait(30)
    assert shell.user_ns["later"].tolist() == [10, 20, 30]


def test_options_reach_the_task_type(shell, tmp_path):
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("labnb-magics-test")
    cell(shell, "tracked n=[1] --lab fast --wait --max-parallel 2 --mlflow", "n")
    (task,) = shell.user_ns["fast"].cached_tasks([_type_of(shell, "tracked")])
    meta = task._labnb_meta
    assert meta.max_parallel == 2 and meta.mlflow_run is True


def _type_of(shell, name):
    from labnb.model.tasks import _TASK_TYPES

    return _TASK_TYPES[("__main__", name)]


def test_line_magic_status_uncache_and_browser(shell, capsys):
    cell(shell, "sq n=range(4) --wait", "n * n")
    lab = shell.run_line_magic("labnb", "")
    assert isinstance(lab, labnb.Lab) and len(lab.cache_table()) == 4
    shell.run_line_magic("labnb", "status")
    out = capsys.readouterr().out
    assert "4 cached results" in out and "sq" in out
    shell.run_line_magic("labnb", "uncache sq n=3")
    assert "removed 1 cached result(s) of sq" in capsys.readouterr().out
    assert sorted(lab.cache_table()["params.n"]) == [0, 1, 2]
    shell.run_line_magic("labnb", "uncache sq")
    assert len(lab.cache_table()) == 0
    with pytest.raises(UsageError, match="unknown command"):
        shell.run_line_magic("labnb", "frobnicate")


def test_status_reads_in_human_units_local_time_and_lists_running_runs(tmp_path):
    lab = labnb.Lab(storage=tmp_path / "s", max_workers=2)
    lab.run_tasks([Stamp(n=n) for n in range(3)], disable_progress=True)
    run = lab.submit([Stamp(n=10, seconds=30), Stamp(n=11, seconds=30)])
    deadline = time.time() + 60
    while run.counts().get("running", 0) < 2:
        assert time.time() < deadline, "the run never started its tasks"
        time.sleep(0.05)
    text = status_text(lab)
    run.cancel()
    lines = text.splitlines()
    assert lines[1].startswith("3 cached results, ") and lines[1].endswith(" B")
    (stamp,) = [line for line in lines if line.strip().startswith("Stamp")]
    assert stamp.split()[1] == "3" and datetime.now().strftime("%Y-%m-%d") in stamp
    (running,) = [line for line in lines if line.startswith("run ")]
    assert f"run {run.id} (running since " in running
    assert running.endswith("0 of 2 done, 2 running"), running
    run.wait(60)
