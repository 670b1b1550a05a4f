"""The widgets' kernel side: the state they send and every message they handle.

The browser is untrusted: unknown commands and malformed payloads must be
answered with an error (and logged), never raise in the kernel.
"""

from __future__ import annotations

import threading
import time

import pytest
from sample_tasks import Chatty, Colour, Fails, Square, Stamp, WithEnum

import labnb
from labnb.display.widgets import CacheView, RunView, ticker


@pytest.fixture
def sent(monkeypatch):
    """Every message the widgets send to the browser: (kind, payload)."""
    from ipywidgets import Widget

    messages: list[tuple[str, dict]] = []
    original = Widget._send

    def record(self, msg, buffers=None):
        method = msg.get("method")
        messages.append(("state" if method == "update" else method, msg))
        return original(self, msg, buffers)

    monkeypatch.setattr(Widget, "_send", record)
    monkeypatch.setattr(
        Widget, "send", lambda self, content, buffers=None: messages.append(("custom", content))
    )
    return messages


def command(view, name, msg, sent):
    """Send a command the way anywidget's invoke() does and return the reply."""
    before = len(sent)
    view._on_message(
        view, {"kind": "anywidget-command", "id": "req-1", "name": name, "msg": msg}, []
    )
    replies = [payload for kind, payload in sent[before:] if kind == "custom"]
    assert len(replies) == 1
    assert replies[0]["id"] == "req-1" and replies[0]["kind"] == "anywidget-command-response"
    return replies[0]["response"]


@pytest.fixture
def finished_run(tmp_path):
    lab = labnb.Lab(storage=tmp_path / "s", runner="thread", continue_on_failure=True)
    lab.run_tasks([Square(x=1)])
    run = lab.submit([Square(x=1), Chatty(n=2), Fails(n=3)])
    run.wait(30)
    return lab, run


def test_run_view_state(finished_run, sent):
    _, run = finished_run
    view = RunView(run.state, cancel=run.cancel)
    summary = view.summary
    assert summary["total"] == 3 and summary["done"] == 2 and summary["loaded"] == 1
    assert summary["failed"] == 1 and summary["state"] == "failed" and summary["eta_s"] is None
    assert {row["type"]: row["total"] for row in view.types} == {
        "Square": 1,
        "Chatty": 1,
        "Fails": 1,
    }
    statuses = {row["type"]: row["status"] for row in view.tasks}
    assert statuses == {"Square": "loaded", "Chatty": "done", "Fails": "failed"}
    assert [row["status"] for row in view.tasks] == ["failed", "done", "loaded"]
    assert "2 done, 1 loaded, 1 failed" in repr(view).replace("1 done", "2 done") or repr(view)
    view.close()


def test_run_view_logs_commands(finished_run, sent):
    _, run = finished_run
    view = RunView(run.state, cancel=run.cancel)
    chatty = labnb.task_id(Chatty(n=2))
    reply = command(view, "open_logs", {"id": chatty}, sent)
    assert reply["ok"] and "task 2 line 0" in reply["text"]
    assert view.log_task["id"] == chatty and "task 2 logged" in view.log_task["text"]
    failed = command(view, "open_logs", {"id": labnb.task_id(Fails(n=3))}, sent)
    assert "ValueError: bad value 3" in failed["text"]
    assert command(view, "close_logs", {}, sent) == {"ok": True}
    assert view.log_task["id"] == ""
    view.close()


@pytest.mark.parametrize(
    ("name", "msg", "error"),
    [
        ("no_such_command", {}, "unknown command"),
        ("open_logs", "not a dict", "must be an object"),
        ("open_logs", {"id": "../../etc/passwd"}, "no such task"),
        ("open_logs", {"id": "0" * 32}, "no such task"),
        ("open_logs", {}, "no such task"),
        (None, {}, "unknown command"),
    ],
)
def test_bad_messages_get_an_error_reply_and_never_raise(
    finished_run, sent, caplog, name, msg, error
):
    _, run = finished_run
    view = RunView(run.state, cancel=run.cancel)
    reply = command(view, name, msg, sent)
    assert reply["ok"] is False and error in reply["error"]
    assert any("labnb widget" in record.getMessage() for record in caplog.records)
    view.close()


def test_messages_that_are_not_commands_are_ignored(finished_run, sent, caplog):
    _, run = finished_run
    view = RunView(run.state)
    for content in ["text", 42, None, {"kind": "other"}, ["list"]]:
        view._on_message(view, content, [])
    assert not [kind for kind, _ in sent if kind == "custom"]
    assert len([r for r in caplog.records if "not a command" in r.getMessage()]) == 5
    view.close()


def test_cancel_from_the_widget(tmp_path, sent):
    lab = labnb.Lab(storage=tmp_path / "s", runner="thread")
    run = lab.submit([Stamp(n=i, seconds=0.3) for i in range(6)])
    view = RunView(run.state, cancel=run.cancel)
    assert command(view, "cancel", {}, sent) == {"ok": True}
    assert run.wait(10) and run.state.outcome == "cancelled"
    blocking = RunView(run.state)
    assert command(blocking, "cancel", {}, sent)["ok"] is False
    view.close()
    blocking.close()


def test_updates_are_batched_at_most_ten_a_second(tmp_path, sent):
    lab = labnb.Lab(storage=tmp_path / "s", runner="thread", max_workers=2)
    run = lab.submit([Stamp(n=i, seconds=0.005) for i in range(300)])
    view = RunView(run.state, cancel=run.cancel)
    before = sum(kind == "state" for kind, _ in sent)
    started = time.monotonic()
    run.wait(60)
    time.sleep(0.3)
    elapsed = time.monotonic() - started
    updates = sum(kind == "state" for kind, _ in sent) - before
    assert 1 <= updates <= 10 * elapsed + 3
    assert view.summary["done"] == 300 and view.summary["state"] == "done"
    view.close()


@pytest.fixture
def cached_lab(tmp_path):
    lab = labnb.Lab(storage=tmp_path / "s", runner="serial")
    lab.run_tasks([Square(x=x) for x in range(12)])
    lab.run_tasks([WithEnum(colour=c, options={"k": 1}) for c in Colour])
    return lab


def test_cache_view_lists_groups_and_pages(cached_lab):
    view = CacheView(cached_lab)
    assert view.groups == [
        {"type": "Square", "count": 12, "cached": 12},
        {"type": "WithEnum", "count": 2, "cached": 2},
    ]
    assert view.total_rows == 14 and len(view.rows) == 14
    view.query = {
        **view.query,
        "type": "Square",
        "sort": "params.x",
        "descending": False,
        "page_size": 5,
        "page": 1,
    }
    assert view.total_rows == 12
    assert [row["params"]["params.x"] for row in view.rows] == ["5", "6", "7", "8", "9"]
    assert view.columns == ["params.x", "result"]  # Square returns a number
    assert view.rows[0]["label"] == "Square(x=5)"
    view.query = {**view.query, "type": "", "text": "colour.blue", "page": 0}
    assert view.total_rows == 1 and view.rows[0]["params"]["params.colour"] == "Colour.BLUE"
    row = view.rows[0]
    assert set(row) == {
        "id",
        "type",
        "label",
        "params",
        "started",
        "duration_s",
        "size_bytes",
        "version",
        "version_note",
    }
    view.close()


def test_cache_view_corrects_malformed_queries(cached_lab, caplog):
    view = CacheView(cached_lab)
    view.query = {"text": 5, "sort": "__class__", "page": -3, "page_size": 10**9, "type": ["x"]}
    assert view.total_rows == 14 and len(view.rows) == 14
    assert any("malformed query" in r.getMessage() for r in caplog.records)
    view.close()


def test_cache_view_uncaches_only_known_ids(cached_lab, sent):
    view = CacheView(cached_lab)
    square = labnb.task_id(Square(x=3))
    reply = command(view, "uncache", {"ids": [square, "0" * 32, "not-an-id", 7]}, sent)
    assert reply == {"ok": True, "removed": 1, "unknown": ["0" * 32, "not-an-id", "7"]}
    assert not cached_lab.is_cached(Square(x=3)) and cached_lab.is_cached(Square(x=4))
    assert view.total_rows == 13 and square not in {row["id"] for row in view.rows}
    assert command(view, "uncache", {"ids": "all"}, sent)["ok"] is False
    assert view.total_rows == 13
    view.close()


def test_a_hostile_uncache_message_is_handled_once_per_id(cached_lab, sent):
    view = CacheView(cached_lab)
    square = labnb.task_id(Square(x=3))
    flood = [square] * 50_000 + [f"{n:032x}" for n in range(49_999)] + [{"id": square}]
    reply = command(view, "uncache", {"ids": flood}, sent)
    assert reply["ok"] and reply["removed"] == 1 and len(reply["unknown"]) == 100
    assert not cached_lab.is_cached(Square(x=3)) and view.total_rows == 13
    view.close()


def test_a_malformed_query_never_becomes_state(cached_lab, sent):
    view = CacheView(cached_lab)
    view.query = {**view.query, "sort": ["unhashable"], "page_size": "ten"}
    assert view.query["sort"] == "started" and view.query["page_size"] == 50
    assert command(view, "refresh", {}, sent) == {"ok": True}
    reply = command(view, "uncache", {"ids": [labnb.task_id(Square(x=4))]}, sent)
    assert reply == {"ok": True, "removed": 1, "unknown": []}
    view.close()


def test_cache_view_logs_and_refresh_from_another_lab(cached_lab, sent):
    view = CacheView(cached_lab)
    other = labnb.Lab(storage=cached_lab.storage.path, runner="serial")
    other.run_tasks([Chatty(n=5)])
    view._checked_at = 0
    view.tick()
    assert view.total_rows == 15
    reply = command(view, "logs", {"id": labnb.task_id(Chatty(n=5))}, sent)
    assert reply["ok"] and "task 5 line 2" in reply["text"]
    assert command(view, "logs", {"id": "f" * 32}, sent)["ok"] is False
    assert command(view, "refresh", {}, sent) == {"ok": True}
    view.close()


def test_handlers_are_thread_safe(cached_lab, sent):
    view = CacheView(cached_lab)
    ids = [labnb.task_id(Square(x=x)) for x in range(12)]
    errors = []

    def click(key):
        try:
            command_reply = view.dispatch("uncache", {"ids": [key]})
            assert command_reply["ok"]
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=click, args=(key,)) for key in ids]
    for thread in threads:
        thread.start()
    for _ in range(5):
        view._checked_at = 0
        view.tick()
    for thread in threads:
        thread.join()
    assert not errors
    assert view.total_rows == 2 and cached_lab.cache_table()["type"].tolist() == ["WithEnum"] * 2
    view.close()


def test_displaying_outside_a_kernel_is_plain_text(cached_lab):
    assert cached_lab._repr_mimebundle_() == {"text/plain": repr(cached_lab)}
    assert ticker is not None


@pytest.fixture
def tracked_lab(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the task writes its artifacts relative to here
    from tracking_tasks import Prepare, Train

    lab = labnb.Lab(storage=tmp_path / "s", runner="thread")
    return lab, Train(c=0.5, data=Prepare(n=4))


def test_run_view_logs_carry_metrics_and_artifacts(tracked_lab, sent):
    lab, train = tracked_lab
    run = lab.submit([train])
    run.wait(60)
    view = RunView(run.state, cancel=run.cancel, storage=lab.storage)
    reply = command(view, "open_logs", {"id": labnb.task_id(train)}, sent)
    metrics = {metric["name"]: metric for metric in reply["metrics"]}
    assert metrics["loss"]["points"] == [[0, 1.0], [1, 0.5], [2, 1 / 3]]
    assert metrics["loss"]["last"] == 1 / 3
    assert metrics["accuracy"] == {"name": "accuracy", "last": 0.75, "points": [[0, 0.75]]}
    assert reply["artifacts"] == ["report.txt", "plots"] and reply["models"] == ["model"]
    assert view.log_task["metrics"] == reply["metrics"]
    assert view.log_task["artifacts"] == ["report.txt", "plots"]
    # Loaded from the cache in a later run: the same, from the storage entry.
    again = lab.submit([train])
    again.wait(60)
    loaded = RunView(again.state, storage=lab.storage)
    reply = command(loaded, "open_logs", {"id": labnb.task_id(train)}, sent)
    assert reply["metrics"] == view.log_task["metrics"] and reply["models"] == ["model"]
    assert command(loaded, "close_logs", {}, sent) == {"ok": True}
    assert loaded.log_task["metrics"] == [] and loaded.log_task["artifacts"] == []
    view.close()
    loaded.close()


def test_run_view_metrics_follow_a_running_task(finished_run, sent):
    _, run = finished_run
    view = RunView(run.state, cancel=run.cancel)
    chatty = labnb.task_id(Chatty(n=2))
    assert command(view, "open_logs", {"id": chatty}, sent)["metrics"] == []
    for step in range(1200):  # as a running task's log_metric calls arrive
        run.state.metric(chatty, "loss", 1.0 / (step + 1), step)
        if step in (0, 1):
            view.update()
            assert len(view.log_task["metrics"][0]["points"]) == step + 1
    view.update()
    (loss,) = view.log_task["metrics"]
    assert len(loss["points"]) == 500
    assert loss["points"][0] == [0, 1.0] and loss["points"][-1] == [1199, 1 / 1200]
    assert loss["last"] == 1 / 1200
    assert [point[0] for point in loss["points"]] == sorted({p[0] for p in loss["points"]})
    view.close()


def test_cache_view_logs_carry_metrics_and_artifacts(tracked_lab, sent):
    lab, train = tracked_lab
    lab.run_tasks([train])
    view = CacheView(lab)
    reply = command(view, "logs", {"id": labnb.task_id(train)}, sent)
    assert reply["ok"]
    metrics = {metric["name"]: metric for metric in reply["metrics"]}
    assert [point[0] for point in metrics["loss"]["points"]] == [0, 1, 2]
    assert reply["artifacts"] == ["report.txt", "plots"] and reply["models"] == ["model"]
    prepared = command(view, "logs", {"id": labnb.task_id(train.data)}, sent)
    assert prepared["metrics"] == [] and prepared["artifacts"] == [] and prepared["models"] == []
    view.close()


def test_run_view_rows_follow_a_status_filter_and_a_limit(finished_run, sent):
    _, run = finished_run
    view = RunView(run.state, cancel=run.cancel)
    assert view.task_view == {"status": "", "limit": 200, "shown": 3, "matching": 3}
    assert command(view, "show_tasks", {"status": "failed", "limit": 200}, sent) == {
        "ok": True,
        "shown": 1,
        "matching": 1,
    }
    assert [row["type"] for row in view.tasks] == ["Fails"]
    command(view, "show_tasks", {"status": "", "limit": 1}, sent)
    assert len(view.tasks) == 1 and view.task_view["matching"] == 3
    view.refresh()  # a later update keeps the choice
    assert len(view.tasks) == 1 and view.task_view["limit"] == 1
    for bad in (
        {"status": "exploded"},
        {"status": "done", "limit": 0},
        {"limit": True},
        {"limit": "200"},
        {"limit": 10**9},
    ):
        reply = command(view, "show_tasks", bad, sent)
        assert reply["ok"] is False, bad
    assert view.task_view["limit"] == 1  # a refused message changes nothing
    view.close()


def test_the_eta_comes_from_finished_tasks_durations_and_how_many_run_at_once():
    from types import SimpleNamespace

    from labnb.display.widgets import estimate_remaining

    def record(status, started=None, finished=None):
        return SimpleNamespace(status=status, started=started, finished=finished)

    now = 1000.0
    finished = [record("done", 900.0, 910.0), record("failed", 950.0, 960.0)]  # 10 s each
    running = [record("running", now - 5) for _ in range(4)]
    waiting = [record("waiting") for _ in range(8)]
    # 4 running with 5 s left each, 8 waiting of 10 s, 4 at a time: (20 + 80) / 4.
    assert estimate_remaining(finished + running + waiting, now, 4) == 25.0
    assert estimate_remaining(running + waiting, now, 4) is None  # nothing finished yet
    assert estimate_remaining(finished, now, 4) is None  # nothing left
    late = [record("running", now - 60)]  # over its typical time: nothing more is counted
    assert estimate_remaining(finished + late + waiting[:2], now, 2) == 10.0


def test_a_task_handed_to_a_worker_that_has_not_begun_it_is_starting(tmp_path):
    from labnb.engine.planning import make_plan
    from labnb.engine.state import RunState

    lab = labnb.Lab(storage=tmp_path / "s", runner="serial")
    plan = make_plan([Square(x=1), Square(x=2)], lab.storage, bust_cache=False)
    state = RunState(plan)
    one, two = labnb.task_id(Square(x=1)), labnb.task_id(Square(x=2))
    state.starting(one, None)
    assert state.counts()["starting"] == 1 and state.running_keys() == [one]
    view = RunView(state)
    assert view.summary["starting"] == 1 and view.summary["running"] == 0
    (row,) = [row for row in view.tasks if row["id"] == one]
    assert row["status"] == "starting" and row["elapsed_s"] is None  # not begun: no time yet
    assert view.tasks[0]["id"] == one  # shown first, with the running ones
    state.started(one, 123, time.time())
    view.refresh()
    assert view.summary["starting"] == 0 and view.summary["running"] == 1
    assert two not in state.running_keys()
    view.close()


def test_run_view_types_say_which_types_they_depend_on(tmp_path):
    from sample_tasks import Total

    lab = labnb.Lab(storage=tmp_path / "s", runner="thread")
    run = lab.submit([Total(parts=[Square(x=1), Square(x=2)])])
    run.wait(30)
    view = RunView(run.state)
    after = {row["type"]: row["after"] for row in view.types}
    assert after == {"Total": ["Square"], "Square": []}
    view.close()
