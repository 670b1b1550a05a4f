"""``labnb``: the cache from a terminal (a cluster's head node, an SSH session).

    labnb ls STORAGE [--type T]          a table like Lab.cache_table()
    labnb show STORAGE ID                parameters, timings and logs of one task
    labnb rm STORAGE (ID... | --type T)  remove results (asks first unless --yes)

IDs may be abbreviated to any unique prefix (as git does). Bad storage paths
and unknown ids print a clear message and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pandas as pd

from .lab import Lab
from .storage import MARKER, Entry, LocalStorage
from .tables import cache_table, display_value

USAGE_ERROR = 2
CELL_WIDTH = 40
FIXED = {"type", "id", "started", "finished", "duration_s", "size_bytes"}


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.command(args)
    except CliError as error:
        print(f"labnb: {error}", file=sys.stderr)
        return USAGE_ERROR
    except BrokenPipeError:  # `labnb ls ... | head`: the reader has seen enough
        sys.stderr.close()
        return 0


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
    rm.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rm.set_defaults(command=remove_command)
    return parser


def open_storage(path: str) -> LocalStorage:
    """An existing labnb storage; never creates one (a typo must not make a new empty cache)."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise CliError(f"{path}: no such directory")
    if not (folder / MARKER).exists():
        raise CliError(f"{path}: not a labnb storage directory (no {MARKER})")
    return LocalStorage(folder)


def list_command(args: argparse.Namespace) -> int:
    lab = Lab(storage=open_storage(args.storage), runner="serial")
    entries = [(key, entry) for key, entry in lab.storage.entries() if _wanted(entry, args.types)]
    table = cache_table(entries)
    if table.empty:
        print("no cached results" + (f" of type {', '.join(args.types)}" if args.types else ""))
        return 0
    table["id"] = table["id"].str[:12]
    for column in ("started", "finished"):
        table[column] = table[column].dt.strftime("%Y-%m-%d %H:%M:%S")
    params = [column for column in table.columns if column not in FIXED]
    table[params] = table[params].astype(object).map(_cell)
    print(table.to_string(index=False))
    return 0


def _cell(value: object) -> str:
    """A parameter as a terminal cell: empty when missing, long values shortened."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    text = str(value)
    return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 1] + "…"


def show_command(args: argparse.Namespace) -> int:
    storage = open_storage(args.storage)
    key, entry = resolve(storage, args.id)
    print(f"{entry['type']}  {key}")
    for name, value in entry["params"].items():
        print(f"  {name} = {display_value(value)!r}")
    started, finished = (
        datetime.fromtimestamp(entry[k]).astimezone() for k in ("started", "finished")
    )
    print(f"started   {started:%Y-%m-%d %H:%M:%S %Z}")
    print(
        f"finished  {finished:%Y-%m-%d %H:%M:%S %Z}  ({entry['finished'] - entry['started']:.3f} s)"
    )
    path = storage.path / "results" / entry["file"]
    print(f"result    {entry['size']} bytes, {entry['format']}, {path}")
    logs = storage.read_logs(key)
    print("logs:" if logs else "logs: (none)")
    if logs:
        print(logs, end="" if logs.endswith("\n") else "\n")
    return 0


def remove_command(args: argparse.Namespace) -> int:
    storage = open_storage(args.storage)
    if bool(args.ids) == bool(args.types):
        raise CliError("rm takes either task ids or --type, not both or neither")
    if args.ids:
        keys = [resolve(storage, given)[0] for given in args.ids]
    else:
        keys = [key for key, entry in storage.entries() if _wanted(entry, args.types)]
        if not keys:
            raise CliError(f"no cached results of type {', '.join(args.types)}")
    if not args.yes and not _confirm(
        f"remove {len(keys)} cached result(s) from {storage.path}? [y/N] "
    ):
        print("nothing removed")
        return 1
    print(f"removed {storage.remove(keys)} cached result(s)")
    return 0


def resolve(storage: LocalStorage, given: str) -> tuple[str, Entry]:
    """The one cached task whose id starts with ``given``."""
    if len(given) < 4 or any(char not in "0123456789abcdef" for char in given):
        raise CliError(f"{given!r} is not a task id (at least 4 hex digits)")
    entry = storage.lookup(given) if len(given) == 32 else None
    if entry is not None:
        return given, entry
    found = [(key, entry) for key, entry in storage.entries() if key.startswith(given)]
    if not found:
        raise CliError(f"no cached task with id {given}")
    if len(found) > 1:
        raise CliError(f"id {given} is ambiguous: {', '.join(key[:12] for key, _ in found)}")
    return found[0]


def _wanted(entry: Entry, types: list[str] | None) -> bool:
    return types is None or entry["type"] in types


def _confirm(question: str) -> bool:
    try:
        return input(question).strip().lower() in ("y", "yes")
    except EOFError:  # no terminal to ask: the safe answer is no
        return False


if __name__ == "__main__":
    sys.exit(main())
