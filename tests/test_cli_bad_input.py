"""``labnb ls`` / ``show`` on storages that cannot be read as they are, and on
logs that hold terminal escape sequences: one clear line and exit status 2,
never a traceback; nothing from a storage reaches the terminal as a control."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from requirements import unavailable
from sample_tasks import Square
from test_cli import labnb_command

import labnb


@labnb.task
class PrintsEscapes:
    n: int = 0

    def run(self) -> int:
        # Clear the screen, retitle the window, colour, a line hidden by a carriage
        # return, and a right-to-left override.
        print("\x1b[2J\x1b]0;owned\x07\x1b[31mred\x1b[0m visible\rhidden \u202etxt.exe")
        return 1


@pytest.fixture
def storage(tmp_path) -> Path:
    lab = labnb.Lab(storage=tmp_path / "store", runner="serial")
    lab.run_tasks([Square(x=2), PrintsEscapes()])
    return tmp_path / "store"


def assert_one_clear_line(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("labnb: "), result.stderr
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize("command", ["ls", "show"])
def test_a_garbage_index(storage, command):
    (storage / "catalog.sqlite").write_bytes(b"not a database at all" * 100)
    for suffix in ("-wal", "-shm"):
        (storage / f"catalog.sqlite{suffix}").unlink(missing_ok=True)
    args = [command, str(storage)] + (["abcd"] if command == "show" else [])
    assert_one_clear_line(labnb_command(*args), "catalog.sqlite", "not a database")


@pytest.mark.parametrize("command", ["ls", "show"])
def test_an_index_that_is_a_folder(storage, command):
    (storage / "catalog.sqlite").unlink()
    (storage / "catalog.sqlite").mkdir()
    args = [command, str(storage)] + (["abcd"] if command == "show" else [])
    assert_one_clear_line(labnb_command(*args), "catalog.sqlite")


@pytest.mark.parametrize("command", ["ls", "show"])
def test_a_deleted_storage(storage, command):
    shutil.rmtree(storage)
    args = [command, str(storage)] + (["abcd"] if command == "show" else [])
    assert_one_clear_line(labnb_command(*args), "no such directory")


def test_a_garbage_0_1_0_index(tmp_path):
    old = tmp_path / "old"
    shutil.copytree(Path(__file__).parent / "fixtures" / "storage-0.1.0", old)
    (old / "logs" / "cache.db").write_bytes(b"garbage" * 100)
    assert_one_clear_line(labnb_command("ls", str(old)), "unreadable")


@contextlib.contextmanager
def read_only(folder: Path):
    """``folder`` read-only even for root: a read-only bind mount over it."""
    if os.geteuid() != 0:
        modes = {path: path.stat().st_mode for path in [folder, *folder.rglob("*")]}
        for path in modes:
            path.chmod(modes[path] & ~0o222)
        try:
            yield
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
        return
    done = subprocess.run(["mount", "--bind", "-o", "ro", str(folder), str(folder)], check=False)
    if done.returncode != 0:
        unavailable("a read-only bind mount needs mount(8) and CAP_SYS_ADMIN")
    try:
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("command", ["ls", "show"])
def test_a_read_only_storage(storage, command):
    args = [command, str(storage)] + ([labnb.task_id(Square(x=2))] if command == "show" else [])
    with read_only(storage):
        result = labnb_command(*args)
    assert_one_clear_line(result, "Read-only file system" if os.geteuid() == 0 else "")


def test_show_neutralises_terminal_escapes(storage):
    result = labnb_command("show", str(storage), labnb.task_id(PrintsEscapes()))
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "\r" not in result.stdout and "\u202e" not in result.stdout
    assert "\\x1b[2J\\x1b]0;owned\\x07\\x1b[31mred\\x1b[0m visible\nhidden \\u202etxt.exe" in (
        result.stdout
    )
