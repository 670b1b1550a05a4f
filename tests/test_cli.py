"""The ``labnb`` command, run through its installed entry point as a user would."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sample_tasks import Chatty, Colour, Square, WithEnum

import labnb

LABNB = shutil.which("labnb", path=str(Path(sys.executable).parent))


def labnb_command(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    assert LABNB is not None, "the labnb console script is not installed"
    return subprocess.run([LABNB, *args], capture_output=True, text=True, input=stdin, timeout=60)


@pytest.fixture
def storage(tmp_path):
    lab = labnb.Lab(storage=tmp_path / "store", runner="serial")
    lab.run_tasks([Square(x=x) for x in range(3)])
    lab.run_tasks([Chatty(n=1), WithEnum(colour=Colour.RED, options={"a": 1})])
    return tmp_path / "store"


def test_ls(storage):
    result = labnb_command("ls", str(storage))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["type", "id"] and len(lines) == 6
    assert "Colour.RED" in result.stdout
    only = labnb_command("ls", str(storage), "--type", "Square")
    assert len(only.stdout.splitlines()) == 4 and "Chatty" not in only.stdout


def test_show_by_id_prefix(storage):
    key = labnb.task_id(Chatty(n=1))
    result = labnb_command("show", str(storage), key[:8])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Chatty  {key}")
    assert "n = 1" in result.stdout and "task 1 line 2" in result.stdout
    assert "started" in result.stdout and "bytes, pickle" in result.stdout


def test_rm_asks_first(storage):
    key = labnb.task_id(Square(x=1))
    declined = labnb_command("rm", str(storage), key, stdin="n\n")
    assert declined.returncode == 1 and "nothing removed" in declined.stdout
    accepted = labnb_command("rm", str(storage), key, stdin="y\n")
    assert accepted.returncode == 0 and "removed 1" in accepted.stdout
    lab = labnb.Lab(storage=storage, runner="serial")
    assert not lab.is_cached(Square(x=1)) and lab.is_cached(Square(x=2))


def test_rm_by_type_with_yes(storage):
    result = labnb_command("rm", str(storage), "--type", "Square", "--yes")
    assert result.returncode == 0 and "removed 3 cached result(s)" in result.stdout
    assert len(labnb.Lab(storage=storage, runner="serial").cache_table()) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ls", "/no/such/place"], "no such directory"),
        (["show", "{storage}", "ffffffff"], "no cached task with id ffffffff"),
        (["show", "{storage}", "xyz!"], "is not a task id"),
        (["rm", "{storage}", "0000aaaa", "--yes"], "no cached task"),
        (["rm", "{storage}"], "either task ids or --type"),
        (["rm", "{storage}", "--type", "Nope", "--yes"], "no cached results of type Nope"),
        (["ls", "{plain}"], "not a labnb storage directory"),
    ],
)
def test_bad_paths_and_ids_exit_2(storage, tmp_path, args, message):
    (tmp_path / "plain").mkdir()
    args = [arg.format(storage=storage, plain=tmp_path / "plain") for arg in args]
    result = labnb_command(*args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "plain" / "index").exists()
