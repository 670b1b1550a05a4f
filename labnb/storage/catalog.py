"""``Catalog``: find, count, page, remove and tidy a storage's entries.

Every reader of the cache goes through here: ``Lab`` (``cache_table``,
``cached_tasks``, ``uncache_tasks``), the cache browser (one page per query),
``%labnb`` and the ``labnb`` command. Queries run inside SQLite on the
catalog's real columns (``schema.py``), so a page of 100,000 entries costs
about what a page of 100 does.

Columns are named as in ``cache_table``: ``type``, ``id``, ``started``,
``finished``, ``duration_s``, ``size_bytes``, ``code_version``, ``run_id``,
``mlflow_run_id``, ``params.<name>`` (task fields and logged parameters) and
``metrics.<name>`` (a metric's last value). ``where`` is a dict of equalities
or a pandas-style expression::

    catalog.query(Fit, where="params.model == 'svm' and params.C > 1",
                  sort="metrics.accuracy", descending=True, offset=100, limit=50)

In an expression a bare name means ``params.<name>`` (else ``metrics.<name>``),
and ``params.config.depth`` is key ``depth`` of a dict parameter ``config``.
``words`` must each appear in an entry's visible text (its type and parameter
values, not its id): what the cache browser's free words match.
"""

from __future__ import annotations

import ast
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import LabnbError
from ..model.tasks import type_name_of
from . import schema
from .blobs import ARTIFACTS, RESULTS
from .entry import IndexEntry

if TYPE_CHECKING:
    import pandas as pd

    from .store import Storage

FIXED = {
    "id": "task_id",
    "type": "type",
    "started": "started",
    "finished": "finished",
    "duration_s": "(finished - started)",
    "size_bytes": "size",
    "status": "status",
    "code_version": "code_version",
    "code": "code",
    "result": "result",
    "run_id": "run_id",
    "mlflow_run_id": "mlflow_run_id",
}
_NOT_NULL = {"task_id", "type", "started", "finished", "(finished - started)", "size"}
"""Sort columns no entry lacks (``FIXED`` values of NOT NULL columns)."""
REMOVE_BATCH = 1000
"""Entries ``Catalog.remove`` removes per write transaction."""
_COMPARISONS = {
    ast.Eq: "=",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
}


class QueryError(LabnbError, ValueError):
    """A query names a column that does not exist or uses an unsupported expression."""


@dataclass
class _Sql:
    """A WHERE clause and its parameters."""

    clauses: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)

    def text(self) -> str:
        return f" WHERE {' AND '.join(self.clauses)}" if self.clauses else ""


@dataclass(frozen=True)
class GcReport:
    """What ``Catalog.gc`` removed (or, with ``dry_run``, would remove)."""

    files: int = 0
    temporary: int = 0
    artifacts: int = 0
    logs: int = 0
    bytes: int = 0
    dry_run: bool = False

    def __str__(self) -> str:
        verb = "would free" if self.dry_run else "freed"
        return (
            f"{verb} {self.bytes:,} bytes: {self.files} unreferenced result file(s), "
            f"{self.temporary} temporary file(s), {self.artifacts} artifact folder(s), "
            f"logs of {self.logs} task(s) with no cached result"
        )


class Catalog:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.index = storage.index

    # --- queries -------------------------------------------------------------

    def count(
        self,
        types: Iterable[Any] | None = None,
        where: str | Mapping[str, Any] | None = None,
        text: str = "",
        words: Sequence[str] = (),
    ) -> int:
        with self.index.reading() as db:
            sql = self._where(db, _as_types(types), where, text, words=words)
            return int(
                db.execute(f"SELECT count(*) FROM entries{sql.text()}", sql.args).fetchone()[0]
            )

    def groups(
        self, where: str | Mapping[str, Any] | None = None, words: Sequence[str] = ()
    ) -> dict[str, int]:
        """Cached entries per task type (of those matching ``where`` and ``words``)."""
        with self.index.reading() as db:
            sql = self._where(db, None, where, "", words=words)
            return dict(
                db.execute(
                    f"SELECT type, count(*) FROM entries{sql.text()} GROUP BY type ORDER BY type",
                    sql.args,
                )
            )

    def code_hashes(self, types: Iterable[Any] | None = None) -> dict[str, tuple[str, str, str]]:
        """Task id to (type, module, code hash) for entries that recorded a hash."""
        with self.index.reading() as db:
            chosen = _as_types(types)
            sql = "SELECT task_id, type, module, code FROM entries WHERE code IS NOT NULL"
            args: list[Any] = []
            if chosen:
                sql += f" AND type IN ({schema.marks(chosen)})"
                args = list(chosen)
            return {row[0]: (row[1], row[2] or "", row[3]) for row in db.execute(sql, args)}

    def usage(self) -> list[tuple[str, int, int, float]]:
        """Per task type: entries, bytes stored and the latest finish (a timestamp)."""
        with self.index.reading() as db:
            return list(
                db.execute(
                    "SELECT type, count(*), coalesce(sum(size), 0), max(finished) "
                    "FROM entries GROUP BY type ORDER BY type"
                )
            )

    def columns(self, types: Iterable[Any] | None = None, prefix: str = "") -> list[str]:
        """The dynamic columns (``params.X``, ``metrics.Y``) entries of these types have."""
        with self.index.reading() as db:
            return self._dynamic(db, _as_types(types), prefix)

    def query(
        self,
        types: Iterable[Any] | Any | None = None,
        where: str | Mapping[str, Any] | None = None,
        text: str = "",
        sort: str = "started",
        descending: bool = False,
        offset: int = 0,
        limit: int | None = None,
        words: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """Matching entries as rows of public columns (``id``, ``type``, ``params.X``...).

        Rows that tie on ``sort`` come by start, then by id: the same query
        always pages through the same order."""
        with self.index.reading() as db:
            types = _as_types(types)
            mapping = schema.column_map(db)
            names = self._dynamic(db, types)
            sql = self._where(db, types, where, text, mapping, words)
            order = self._order(sort, descending, mapping)
            selected = [*FIXED.values(), *(mapping[name] for name in names)]
            rows = db.execute(
                f"SELECT {','.join(selected)} FROM entries{sql.text()} {order} LIMIT ? OFFSET ?",
                [*sql.args, -1 if limit is None else int(limit), int(offset)],
            ).fetchall()
        public = [*FIXED, *names]
        return [dict(zip(public, row, strict=True)) for row in rows]

    def entries(
        self,
        types: Iterable[Any] | Any | None = None,
        where: str | Mapping[str, Any] | None = None,
        ids: Iterable[str] | None = None,
    ) -> list[IndexEntry]:
        """Full index entries, oldest first."""
        with self.index.reading() as db:
            if ids is not None:
                found = schema.read_entries(db, list(ids))
                return sorted(found.values(), key=lambda entry: entry.started)
            sql = self._where(db, _as_types(types), where, "")
            rows = db.execute(f"{schema.SELECT_ENTRY}{sql.text()} ORDER BY started", sql.args)
            return [schema.entry_from_row(row) for row in rows]

    def ids(
        self,
        types: Iterable[Any] | Any | None = None,
        where: str | Mapping[str, Any] | None = None,
        words: Sequence[str] = (),
    ) -> list[str]:
        """The ids of the entries that match, oldest first."""
        with self.index.reading() as db:
            sql = self._where(db, _as_types(types), where, "", words=words)
            query = f"SELECT task_id FROM entries{sql.text()} ORDER BY started, task_id"
            return [row[0] for row in db.execute(query, sql.args)]

    def find(self, prefix: str) -> list[IndexEntry]:
        """Entries whose id starts with ``prefix`` (the CLI's short ids)."""
        prefix = prefix.lower()
        if not prefix or any(char not in "0123456789abcdef" for char in prefix):
            return []
        with self.index.reading() as db:
            rows = db.execute(
                f"{schema.SELECT_ENTRY} WHERE task_id >= ? AND task_id < ? ORDER BY started",
                (prefix, prefix + "g"),
            )
            return [schema.entry_from_row(row) for row in rows]

    def table(
        self,
        types: Iterable[Any] | Any | None = None,
        where: str | Mapping[str, Any] | None = None,
    ) -> pd.DataFrame:
        """``Lab.cache_table``: one row per entry, read by pandas straight from SQLite."""
        import pandas as pd

        with self.index.reading() as db:
            types = _as_types(types)
            mapping = schema.column_map(db)
            params = self._dynamic(db, types, sources=(schema.FIELD,))
            logged = sorted(set(self._dynamic(db, types)) - set(params))
            sql = self._where(db, types, where, "", mapping)
            public = ["type", "id", *params, "started", "finished", "duration_s", "size_bytes",
                      "status", *logged, "mlflow_run_id"]  # fmt: skip
            selected = [
                f'{FIXED[name] if name in FIXED else mapping[name]} AS "{index}"'
                for index, name in enumerate(public)
            ]
            frame = pd.read_sql_query(
                f"SELECT {','.join(selected)} FROM entries{sql.text()} ORDER BY started",
                db,
                params=sql.args,
            )
            kinds = self._kinds(db, types)
        frame.columns = public
        for name in params:
            if kinds.get(name) == "bool":
                frame[name] = frame[name].map({1: True, 0: False}, na_action="ignore")
            elif kinds.get(name) == "json":
                frame[name] = frame[name].map(_from_json, na_action="ignore")
        if params:
            frame[params] = frame[params].convert_dtypes()
        if frame["mlflow_run_id"].isna().all():
            frame = frame.drop(columns="mlflow_run_id")
        for column in ("started", "finished"):
            frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
        return frame

    # --- changes -------------------------------------------------------------

    def remove(
        self,
        ids: Iterable[str] | None = None,
        types: Iterable[Any] | Any | None = None,
        where: str | Mapping[str, Any] | None = None,
        words: Sequence[str] = (),
    ) -> int:
        """Remove entries (with their logs and files) by id, or all that match a query.

        In batches of ``REMOVE_BATCH``: each is one short write transaction, so
        removing 20,000 entries never holds the index (and other readers) long."""
        ids = self.ids(types, where, words) if ids is None else list(ids)
        return sum(
            self.storage.remove(ids[start : start + REMOVE_BATCH])
            for start in range(0, len(ids), REMOVE_BATCH)
        )

    def versions(self, task_type: Any) -> list[tuple[str | None, int, float]]:
        """The ``code_version`` values cached entries of this type were made with:
        ``(version, entries, last used)``, the most recently used first."""
        with self.index.reading() as db:
            rows = db.execute(
                "SELECT code_version, count(*), max(finished) FROM entries WHERE type = ? "
                "GROUP BY code_version ORDER BY max(finished) DESC",
                (type_name_of(task_type),),
            ).fetchall()
        return [(version, int(count), float(last)) for version, count, last in rows]

    def remove_older_versions(self, task_type: Any, current: str | None) -> int:
        """Remove the entries of this type made with another ``code_version`` than
        ``current`` (an older definition of the type, or of its cell)."""
        with self.index.reading() as db:
            ids = [
                row[0]
                for row in db.execute(
                    "SELECT task_id FROM entries WHERE type = ? AND code_version IS NOT ?",
                    (type_name_of(task_type), current),
                )
            ]
        return self.storage.remove(ids)

    def gc(self, older_than: float = 3600.0, dry_run: bool = False) -> GcReport:
        """Remove files, artifact folders and logs no entry references.

        Only what is older than ``older_than`` seconds goes: a payload a live
        run wrote a moment ago is committed a moment later, and an artifact
        folder counts as new while anything in it changes.
        """
        blobs = self.storage.blobs
        if blobs is None:
            return GcReport(dry_run=dry_run)
        cutoff = time.time() - older_than
        referenced = self._referenced()
        found = [blob for blob in blobs.scan() if blob.modified < cutoff]
        unreferenced = [blob for blob in found if blob.name not in referenced]
        files = [b for b in unreferenced if b.area == RESULTS and not b.temporary]
        temporary = [b for b in found if b.area == RESULTS and b.temporary]
        folders = [b for b in unreferenced if b.area == ARTIFACTS]
        logs = self.index.orphan_logs(cutoff)
        stray_logs = self.index.remove_stray_log_files(cutoff, dry_run)
        if not dry_run:
            # Read again just before removing: an entry committed meanwhile keeps its files.
            referenced = self._referenced()
            files = [blob for blob in files if blob.name not in referenced]
            folders = [blob for blob in folders if blob.name not in referenced]
            blobs.remove([blob.name for blob in [*files, *temporary]])
            blobs.remove_artifacts(blob.name for blob in folders)
            self.index.remove_orphan_logs(logs)
        return GcReport(
            files=len(files),
            temporary=len(temporary),
            artifacts=len(folders),
            logs=len(logs) + stray_logs,
            bytes=sum(blob.size for blob in [*files, *temporary, *folders]),
            dry_run=dry_run,
        )

    def verify(self, checksums: bool = False) -> dict[str, int]:
        """Check every entry's payload and record what was found in the ``status``
        column (``ok``, ``missing``, ``damaged``); returns the count of each.

        By size, from one listing of the files; ``checksums=True`` also reads
        every payload and checks it (slow on a big storage)."""
        from .entry import DAMAGED, MISSING, OK
        from .store import damage

        blobs = self.storage.blobs
        if blobs is None:
            return {}
        sizes = {blob.name: blob.size for blob in blobs.scan() if blob.area == RESULTS}
        with self.index.reading() as db:
            rows = db.execute("SELECT task_id, file, size, status FROM entries").fetchall()
        found: dict[str, tuple[str, str]] = {}
        counts = dict.fromkeys((OK, MISSING, DAMAGED), 0)
        for key, file, size, old in rows:
            status = MISSING if file not in sizes else DAMAGED if sizes[file] != size else OK
            if status == OK and checksums:
                entry = self.index.get(key)
                try:
                    data = blobs.read(file)
                except OSError:
                    status = MISSING
                else:
                    status = DAMAGED if entry is None or damage(data, entry) else OK
            counts[status] += 1
            if status != old:
                found[key] = (file, status)
        if found:
            self.index.mark(found)
        return counts

    def _referenced(self) -> set[str]:
        """Payload names and artifact folders that entries point at."""
        with self.index.reading() as db:
            rows = db.execute(
                "SELECT file FROM entries UNION SELECT artifacts FROM entries "
                "WHERE artifacts IS NOT NULL"
            )
            return {row[0] for row in rows}

    # --- SQL -----------------------------------------------------------------

    def _dynamic(
        self,
        db: sqlite3.Connection,
        types: Sequence[str] | None,
        prefix: str = "",
        sources: tuple[str, ...] = (schema.FIELD, schema.LOGGED, schema.METRIC),
    ) -> list[str]:
        """Dynamic column names for these types: fields, then logged parameters and
        metrics; grouped by task type (by name), each type's in the order it has them
        (a column several types share comes with the first)."""
        clause = f"source IN ({schema.marks(list(sources))})"
        args: list[Any] = list(sources)
        if types is not None:
            clause += f" AND type IN ({schema.marks(list(types))})"
            args.extend(types)
        rows = db.execute(
            "SELECT name, min(source = 'field') AS field, min(position) FROM type_columns "
            f"WHERE {clause} GROUP BY name ORDER BY field DESC, "
            "min(printf('%s %06d', type, position)), name",
            args,
        ).fetchall()
        known = schema.column_map(db)
        return [name for name, _, _ in rows if name in known and name.startswith(prefix)]

    def _kinds(self, db: sqlite3.Connection, types: Sequence[str] | None) -> dict[str, str]:
        """Each column's kind (``schema.kind_of``) when all these types agree on it."""
        rows = db.execute("SELECT type, name, kind FROM type_columns").fetchall()
        kinds: dict[str, set[str]] = {}
        for type_, name, kind in rows:
            if types is None or type_ in types:
                kinds.setdefault(name, set()).add(kind)
        return {name: found.pop() for name, found in kinds.items() if len(found) == 1}

    def _where(
        self,
        db: sqlite3.Connection,
        types: Sequence[str] | None,
        where: str | Mapping[str, Any] | None,
        text: str,
        mapping: dict[str, str] | None = None,
        words: Sequence[str] = (),
    ) -> _Sql:
        mapping = schema.column_map(db) if mapping is None else mapping
        sql = _Sql()
        if types is not None:
            sql.clauses.append(f"type IN ({schema.marks(list(types))})")
            sql.args.extend(types)
        if text:
            sql.clauses.append("search LIKE ? ESCAPE '\\'")
            sql.args.append(_like(text))
        for word in words:
            # The search text without the id: "3" must not match every id with a 3.
            sql.clauses.append("replace(search, task_id, '') LIKE ? ESCAPE '\\'")
            sql.args.append(_like(word))
        if isinstance(where, Mapping):
            for name, value in where.items():
                column = _column(str(name), mapping, bare=True)
                sql.clauses.append(f"{column} IS ?" if value is None else f"{column} = ?")
                sql.args.append(schema.cell_value(_encoded(value)))
        elif isinstance(where, str) and where.strip():
            try:
                tree = ast.parse(where.strip(), mode="eval").body
            except SyntaxError as exc:
                raise QueryError(f"cannot parse the query {where!r}: {exc.msg}") from None
            clause, args = _translate(tree, mapping)
            sql.clauses.append(clause)
            sql.args.extend(args)
        elif where is not None and not isinstance(where, str):
            raise QueryError("where must be a dict of column values or an expression string")
        return sql

    def _order(self, sort: str, descending: bool, mapping: dict[str, str]) -> str:
        column = _column(sort, mapping, bare=False)
        direction = "DESC" if descending else "ASC"
        # Missing values last either way (as pandas' sort_values), then by start. SQLite
        # sorts NULL first, so only an ascending sort of a column that can be NULL needs
        # "IS NULL" (which keeps SQLite from reading an index in order: a full sort).
        terms = [f"{column} {direction}"]
        if not descending and column not in _NOT_NULL:
            terms.insert(0, f"{column} IS NULL")
        if column != "started":
            terms.append(f"started {direction}")
        if column != "task_id":
            terms.append("task_id ASC")  # rows started in the same second: a stable order
        return "ORDER BY " + ", ".join(terms)


def _like(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere in the (lower-case) search text."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _from_json(text: Any) -> Any:
    """A list or dict parameter back from its JSON cell (lists as tuples, as tasks hold them)."""
    import json

    def tuples(value: Any) -> Any:
        if isinstance(value, list):
            return tuple(tuples(item) for item in value)
        if isinstance(value, dict):
            return {key: tuples(item) for key, item in value.items()}
        return value

    try:
        return tuples(json.loads(text))
    except (TypeError, ValueError):
        return text


def _as_types(types: Any) -> list[str] | None:
    if types is None:
        return None
    if isinstance(types, (str, type)):
        return [type_name_of(types)]
    return [type_name_of(spec) for spec in types]


def _encoded(value: Any) -> Any:
    """A Python value in the stored encoding, so ``where={'colour': Colour.RED}`` works."""
    from ..model.identity import encode

    try:
        return encode(value)
    except TypeError:
        return value


def _column(name: str, mapping: dict[str, str], bare: bool) -> str:
    if name in FIXED:
        return FIXED[name]
    if name in mapping:
        return mapping[name]
    if bare or "." not in name:
        for prefix in (schema.PARAMS, schema.METRICS):
            if prefix + name in mapping:
                return mapping[prefix + name]
    key = _dict_key(name, mapping, bare)
    if key is not None:
        return key
    if name.startswith((schema.PARAMS, schema.METRICS)):
        return "NULL"  # a column no entry has (yet): matches nothing, sorts as missing
    raise QueryError(f"no column {name!r}: use {', '.join(FIXED)}, params.<name> or metrics.<name>")


def _dict_key(name: str, mapping: dict[str, str], bare: bool) -> str | None:
    """``params.config.depth`` (or bare ``config.depth``): key ``depth`` of the dict
    parameter ``config``, read from its JSON cell."""
    base, _, key = name.rpartition(".")
    candidates = [base, schema.PARAMS + base] if bare else [base]
    for candidate in candidates:
        if candidate.startswith(schema.PARAMS) and candidate in mapping and key.isidentifier():
            column = mapping[candidate]
            extract = f"json_extract({column}, '$.\"{key}\"')"
            return f"(CASE WHEN json_valid({column}) THEN {extract} END)"
    return None


def _name_of(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _name_of(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _constant(node: ast.expr) -> Any:
    value = ast.literal_eval(node)
    if isinstance(value, (list, tuple, set)):
        return [schema.cell_value(_encoded(item)) for item in value]
    return schema.cell_value(_encoded(value))


def _translate(node: ast.expr, mapping: dict[str, str]) -> tuple[str, list[Any]]:
    if isinstance(node, ast.BoolOp):
        parts = [_translate(value, mapping) for value in node.values]
        joiner = " AND " if isinstance(node.op, ast.And) else " OR "
        return "(" + joiner.join(part for part, _ in parts) + ")", [
            a for _, args in parts for a in args
        ]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        clause, args = _translate(node.operand, mapping)
        return f"NOT {clause}", args
    if isinstance(node, ast.Compare):
        clauses, args = [], []
        left = node.left
        for op, right in zip(node.ops, node.comparators, strict=True):
            clause, values = _comparison(left, op, right, mapping)
            clauses.append(clause)
            args.extend(values)
            left = right
        return "(" + " AND ".join(clauses) + ")", args
    raise QueryError(f"unsupported query expression: {ast.unparse(node)!r}")


def _comparison(
    left: ast.expr, op: ast.cmpop, right: ast.expr, mapping: dict[str, str]
) -> tuple[str, list[Any]]:
    name = _name_of(left)
    flipped = False
    if name is None:
        name, left, right, flipped = _name_of(right), right, left, True
    if name is None:
        raise QueryError("each comparison needs a column name on one side")
    column = _column(name, mapping, bare=True)
    try:
        value = _constant(right)
    except (ValueError, SyntaxError):
        raise QueryError(
            f"compare {name} with a literal value, not {ast.unparse(right)!r}"
        ) from None
    if isinstance(op, (ast.In, ast.NotIn)):
        if flipped or not isinstance(value, list):
            raise QueryError(f"use `{name} in [...]` with a list of values")
        negation = "NOT " if isinstance(op, ast.NotIn) else ""
        return f"{column} {negation}IN ({schema.marks(value)})", value
    symbol = _COMPARISONS.get(type(op))
    if symbol is None:
        raise QueryError(f"unsupported comparison in the query: {type(op).__name__}")
    if value is None and symbol in ("=", "!="):
        return f"{column} IS {'NOT ' if symbol == '!=' else ''}NULL", []
    if flipped and symbol in ("<", "<=", ">", ">="):
        symbol = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}[symbol]
    if isinstance(value, (int, float)) and symbol not in ("=", "!="):
        # SQLite ranks all text above all numbers: compare numbers with numbers only.
        return f"(typeof({column}) IN ('integer', 'real') AND {column} {symbol} ?)", [value]
    return f"{column} {symbol} ?", [value]
