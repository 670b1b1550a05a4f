"""``labnb``: the cache from a terminal (a cluster's head node, an SSH session).

    labnb ls STORAGE [--type T]          a table like Lab.cache_table()
    labnb show STORAGE ID                parameters, timings and logs of one task
    labnb rm STORAGE (ID... | --type T [--old])  remove results (asks first unless --yes)
    labnb gc STORAGE [--older-than S]    reclaim files no cached result references
    labnb verify STORAGE [--checksums]   check every result file; exit 1 if any is bad
    labnb runs STORAGE [--prune]         the runs recorded in the storage (or forget ended ones)
    labnb cancel STORAGE RUN_ID          stop a running run, wherever it runs
    labnb import-labtech SRC DEST        copy a labtech storage's results into a labnb storage

STORAGE is what ``Lab(storage=...)`` takes: a directory or a URL (``s3://...``,
``file://...``). IDs may be abbreviated to any unique prefix (as git does).
Bad storages and unknown ids print a clear message and exit with status 2.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pandas as pd

from .errors import LabnbError, StorageError
from .storage import MARKER, IndexEntry, Storage
from .storage import open_storage as open_location
from .storage.runs import forget_runs, read_runs
from .storage.schema import cell_value

USAGE_ERROR = 2
CELL_WIDTH = 40
TEXT_COLUMNS = ("type", "id", "started", "finished", "duration_s", "size_bytes", "status")


class CliError(LabnbError):
    """A user error: printed as one line, exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.command(args)
    except CliError as error:
        print(f"labnb: {safe_text(str(error))}", file=sys.stderr)
        return USAGE_ERROR
    except BrokenPipeError:  # `labnb ls ... | head`: the reader has seen enough
        sys.stderr.close()
        return 0
    except (sqlite3.Error, OSError, LabnbError) as error:
        # A storage that cannot be read as it is (read-only, a damaged index, files
        # deleted under it): what is wrong with it in one line, not a traceback.
        print(f"labnb: {safe_text(args.storage)}: {_storage_problem(error)}", file=sys.stderr)
        return USAGE_ERROR


def _storage_problem(error: BaseException) -> str:
    text = safe_text(str(error) or type(error).__name__)
    if isinstance(error, sqlite3.Error):
        return f"its index (catalog.sqlite) cannot be read: {text}"
    return f"cannot be read: {text}"


_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""Control characters (all but newline and tab; ESC starts a terminal escape
sequence) and the bidirectional overrides that make a terminal show text other
than what is there."""
_RETURNS = re.compile("\r\n?")


def safe_text(text: str) -> str:
    """Text from a storage (logs, parameters, type names: data, possibly hostile)
    as it may reach a terminal: every control character shown as ``\\xNN``, so a
    log cannot move the cursor, retitle the window or hide a line. A carriage
    return (a progress bar redrawn in place, or a line written over) ends a line."""
    return _UNSAFE.sub(_escape, _RETURNS.sub("\n", text))


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labnb", description="Inspect and clear a labnb cache.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    ls = commands.add_parser("ls", help="list cached tasks")
    ls.add_argument("storage")
    ls.add_argument("--type", dest="types", action="append", help="only this task type")
    ls.set_defaults(command=list_command)

    show = commands.add_parser("show", help="parameters, timings and logs of a task")
    show.add_argument("storage")
    show.add_argument("id")
    show.set_defaults(command=show_command)

    rm = commands.add_parser("rm", help="remove cached results")
    rm.add_argument("storage")
    rm.add_argument("ids", nargs="*", metavar="ID")
    rm.add_argument("--type", dest="types", action="append", help="every task of this type")
    rm.add_argument(
        "--old",
        action="store_true",
        help="with --type: only entries of older versions (another code_version than "
        "the type's most recently used one)",
    )
    rm.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rm.set_defaults(command=remove_command)

    gc = commands.add_parser("gc", help="remove files no cached result references")
    gc.add_argument("storage")
    gc.add_argument(
        "--older-than",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="only files older than this (default 3600: a live run commits within seconds)",
    )
    gc.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    gc.set_defaults(command=gc_command)

    runs = commands.add_parser("runs", help="the runs recorded in a storage")
    runs.add_argument("storage")
    runs.add_argument("--prune", action="store_true", help="forget the runs that have ended")
    runs.set_defaults(command=runs_command)

    cancel = commands.add_parser("cancel", help="stop a running run, wherever it runs")
    cancel.add_argument("storage")
    cancel.add_argument("run", metavar="RUN_ID")
    cancel.set_defaults(command=cancel_command)

    verify = commands.add_parser("verify", help="check every cached result's file")
    verify.add_argument("storage")
    verify.add_argument("--checksums", action="store_true", help="read every file (slow)")
    verify.set_defaults(command=verify_command)

    imports = commands.add_parser(
        "import-labtech", help="copy the results of a labtech storage into a labnb storage"
    )
    imports.add_argument("source", metavar="SRC", help="the labtech storage directory (only read)")
    imports.add_argument("destination", metavar="DEST", help="a labnb storage (created if new)")
    imports.set_defaults(command=import_labtech_command)
    return parser


def import_labtech_command(args: argparse.Namespace) -> int:
    """Unlike the other commands, DEST may be new: importing into a fresh storage is the point."""
    from .storage.labtech_import import import_labtech, is_labtech_storage

    source = Path(args.source)
    if not is_labtech_storage(source):
        raise CliError(f"{source} is not a labtech storage (no folder with a metadata.json)")
    try:
        report = import_labtech(source, open_location(args.destination))
    except StorageError as error:
        raise CliError(str(error)) from None
    print(
        f"imported {len(report.imported)} result(s), {len(report.already)} already there, "
        f"{len(report.skipped)} skipped"
    )
    for key, reason in report.skipped.items():
        print(f"  skipped {key}: {reason}")
    return 0


def open_storage(location: str) -> Storage:
    """An existing labnb storage; never creates one (a typo must not make a new empty cache)."""
    if "://" in location:
        try:
            from fsspec.core import url_to_fs

            fs, root = url_to_fs(location)
            exists = fs.exists(f"{root.rstrip('/')}/{MARKER}")
        except Exception as exc:  # fsspec backends raise many kinds
            raise CliError(f"{location}: cannot open ({exc})") from None
        if not exists:
            raise CliError(f"{location}: not a labnb storage (no {MARKER})")
    else:
        folder = Path(location).expanduser()
        if not folder.is_dir():
            raise CliError(f"{location}: no such directory")
        if not (folder / MARKER).exists():
            raise CliError(f"{location}: not a labnb storage directory (no {MARKER})")
    try:
        return open_location(location)
    except StorageError as exc:
        raise CliError(str(exc)) from None


def list_command(args: argparse.Namespace) -> int:
    storage = open_storage(args.storage)
    table = storage.catalog.table(args.types)
    if table.empty:
        print("no cached results" + (f" of type {', '.join(args.types)}" if args.types else ""))
        return 0
    table["id"] = table["id"].str[:12]
    for column in ("started", "finished"):
        table[column] = table[column].dt.strftime("%Y-%m-%d %H:%M:%S")
    cells = [column for column in table.columns if column not in TEXT_COLUMNS]
    table[cells] = table[cells].astype(object).map(_cell)
    table["type"] = table["type"].astype(str).map(safe_text)
    table.columns = [safe_text(str(column)) for column in table.columns]
    print(table.to_string(index=False))
    return 0


def _cell(value: object) -> str:
    """A parameter as a terminal cell: empty when missing, long values shortened."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    text = safe_text(str(value))
    return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 1] + "…"


def show_command(args: argparse.Namespace) -> int:
    storage = open_storage(args.storage)
    entry = resolve(storage, args.id)
    print(f"{safe_text(entry.type)}  {entry.task_id}")
    for name, value in entry.params.items():
        print(f"  {safe_text(name)} = {safe_text(repr(cell_value(value)))}")
    started, finished = (
        datetime.fromtimestamp(when).astimezone() for when in (entry.started, entry.finished)
    )
    print(f"started   {started:%Y-%m-%d %H:%M:%S %Z}")
    print(f"finished  {finished:%Y-%m-%d %H:%M:%S %Z}  ({entry.duration:.3f} s)")
    where = storage.blobs.location(entry.file) if storage.blobs is not None else entry.file
    print(f"result    {entry.size} bytes, {safe_text(entry.format)}, {safe_text(str(where))}")
    logs = storage.read_logs(entry.task_id)
    print("logs:" if logs else "logs: (none)")
    if logs:
        logs = safe_text(logs)
        print(logs, end="" if logs.endswith("\n") else "\n")
    return 0


def remove_command(args: argparse.Namespace) -> int:
    storage = open_storage(args.storage)
    if bool(args.ids) == bool(args.types):
        raise CliError("rm takes either task ids or --type, not both or neither")
    if args.old and not args.types:
        raise CliError("--old goes with --type")
    if args.ids:
        keys = [resolve(storage, given).task_id for given in args.ids]
    else:
        entries = storage.catalog.entries(args.types)
        if not entries:
            raise CliError(f"no cached results of type {', '.join(args.types)}")
        if args.old:  # the newest entry of each type says which version is current
            current = {entry.type: entry.code_version for entry in entries}
            entries = [entry for entry in entries if entry.code_version != current[entry.type]]
        keys = [entry.task_id for entry in entries]
        if not keys:
            print("no older versions to remove")
            return 0
    if not args.yes and not _confirm(
        f"remove {len(keys)} cached result(s) from {storage.where}? [y/N] "
    ):
        print("nothing removed")
        return 1
    print(f"removed {storage.remove(keys)} cached result(s)")
    return 0


def gc_command(args: argparse.Namespace) -> int:
    storage = open_storage(args.storage)
    if args.older_than < 0:
        raise CliError("--older-than must be 0 or more seconds")
    print(storage.catalog.gc(older_than=args.older_than, dry_run=args.dry_run))
    return 0


def verify_command(args: argparse.Namespace) -> int:
    counts = open_storage(args.storage).catalog.verify(checksums=args.checksums)
    print(", ".join(f"{count} {status}" for status, count in counts.items()))
    return 0 if counts.get("ok", 0) == sum(counts.values()) else 1


def runs_command(args: argparse.Namespace) -> int:
    storage = open_storage(args.storage)
    runs = read_runs(storage.index)
    if args.prune:
        ended = [run.id for run in runs if run.done]
        forget_runs(storage.index, ended)
        print(f"forgot {len(ended)} run(s) that have ended")
        return 0
    if not runs:
        print("no runs recorded")
        return 0
    for run in runs:
        finished = "" if run.finished is None else f"{run.finished.astimezone():%H:%M:%S}"
        counts = ", ".join(f"{n} {status}" for status, n in sorted(run.counts().items()))
        print(
            f"{run.id}  {run.status:<9}  {run.started.astimezone():%Y-%m-%d %H:%M:%S}"
            f"  {finished:<8}  pid {run.pid} on {run.host}  {counts}"
        )
    return 0


def cancel_command(args: argparse.Namespace) -> int:
    storage = open_storage(args.storage)
    found = [run for run in read_runs(storage.index) if run.id.startswith(args.run.lower())]
    if len(found) != 1:
        raise CliError(f"{'no' if not found else 'more than one'} run with id {args.run}")
    if not found[0].cancel():
        raise CliError(f"run {found[0].id} is not running ({found[0].status})")
    print(f"asked run {found[0].id} to stop")
    return 0


def resolve(storage: Storage, given: str) -> IndexEntry:
    """The one cached task whose id starts with ``given``."""
    if len(given) < 4 or any(char not in "0123456789abcdef" for char in given):
        raise CliError(f"{given!r} is not a task id (at least 4 hex digits)")
    found = storage.catalog.find(given)
    if not found:
        raise CliError(f"no cached task with id {given}")
    if len(found) > 1:
        raise CliError(f"id {given} is ambiguous: {', '.join(e.task_id[:12] for e in found)}")
    return found[0]


def _confirm(question: str) -> bool:
    try:
        return input(question).strip().lower() in ("y", "yes")
    except EOFError:  # no terminal to ask: the safe answer is no
        return False


if __name__ == "__main__":
    sys.exit(main())
