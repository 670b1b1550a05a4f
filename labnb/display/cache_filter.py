"""The cache browser's filter box: its text, read as field queries and free words.

``seed=3 C>1 model=svm lbfgs`` means "seed is 3, C above 1, model is svm, and
the visible text has 'lbfgs'". The box's text becomes the catalog's ``where``
expression and ``words`` (``Catalog.query``), so the query runs in SQLite, never
over the whole index in pandas.

The text comes from the user's keyboard, letter by letter: reading it never
raises. What cannot be read (an unknown field, ``C>`` with no value, an
unclosed quote) comes back as ``error``, a sentence the browser shows as a
hint; the view then matches nothing rather than guess (an uncache of "all
matching" under a half-read filter must not remove what the user did not ask).

Terms:
- ``name=value`` (or ``==``), ``!=``, ``>``, ``>=``, ``<``, ``<=``; spaces around
  the operator are allowed (``C > 1``). ``name`` is a parameter or metric by its
  bare name (``seed``, ``accuracy``), a catalog column (``type``, ``duration_s``,
  ``params.C``), or a dict parameter's key (``config.depth``); case is ignored
  when only one field matches.
- ``value``: a number, ``true``/``false``, ``none``, or text (quoted with ``'``
  or ``"`` when it has spaces). ``seed=3`` also matches a text parameter "3".
- any other word, or a quoted phrase, must appear in the row's visible text
  (type and parameter values; not the hidden task id), case-insensitively.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field

from ..storage.catalog import FIXED
from ..storage.schema import METRICS, PARAMS

MAX_TERMS = 20
"""Terms one filter may hold (each is a clause of the catalog's query)."""

_TERM = re.compile(
    r"""
    (?P<name>[A-Za-z_][\w.]*)\s*(?P<op>==|!=|>=|<=|=|>|<)\s*
        (?P<value>"[^"]*"|'[^']*'|[^\s"'<>=!]+)
  | (?P<phrase>"[^"]*"|'[^']*')
  | (?P<word>\S+)
    """,
    re.VERBOSE,
)
_OPERATORS = {"=": "==", "==": "==", "!=": "!=", ">": ">", ">=": ">=", "<": "<", "<=": "<="}
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
HINT = "Filter: seed=3, C>1, model=svm; other words match the visible text"
"""What the box's hint says while its text reads well (``FilterQuery.error`` otherwise)."""


@dataclass(frozen=True)
class FilterQuery:
    """The filter box's text as the catalog's ``where`` and ``words``."""

    where: str = ""
    words: tuple[str, ...] = ()
    terms: tuple[str, ...] = field(default=())
    """Each field query as read (``seed == 3``), for the hint."""
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def parse_filter(text: str, fields: Collection[str]) -> FilterQuery:
    """Read the filter box's ``text``; ``fields`` are the catalog's column names
    (``params.seed``, ``metrics.accuracy``) that field queries may name."""
    clauses: list[str] = []
    terms: list[str] = []
    words: list[str] = []
    found = list(_TERM.finditer(text))
    if len(found) > MAX_TERMS:
        return FilterQuery(error=f"At most {MAX_TERMS} terms in one filter.")
    for match in found:
        if match["phrase"]:
            words.append(match["phrase"][1:-1])
            continue
        if match["word"]:
            word = match["word"]
            problem = _word_problem(word)
            if problem:
                return FilterQuery(error=problem)
            words.append(word)
            continue
        column = _resolve(match["name"], fields)
        if column is None:
            return FilterQuery(error=_unknown(match["name"], fields))
        op = _OPERATORS[match["op"]]
        raw = match["value"]
        if raw[0] in "\"'":
            values: list[object] = [raw[1:-1]]
        else:
            values = _values(raw)
        if op not in ("==", "!=") and not isinstance(values[0], (int, float)):
            return FilterQuery(error=f"{match['name']}{match['op']} needs a number, not {raw!r}.")
        clauses.append(_clause(column, op, values))
        terms.append(f"{_shown_name(column)} {op} {values[0]!r}")
    return FilterQuery(
        where=" and ".join(clauses),
        words=tuple(word for word in words if word),
        terms=tuple(terms),
    )


def _word_problem(word: str) -> str:
    if word[0] in "\"'":
        return f"Close the quote: {word}{word[0]}"
    if any(char in word for char in "<>=!"):
        name = re.split(r"[<>=!]", word, maxsplit=1)[0]
        if not name:
            return f"Put a field name before {word!r}, as in seed=3."
        return f"Give {name} a value, as in {name}=3."
    return ""


def _resolve(name: str, fields: Collection[str]) -> str | None:
    """The catalog column a field query names, or None."""
    known = set(fields) | set(FIXED)
    for candidate in (name, PARAMS + name, METRICS + name):
        if candidate in known:
            return candidate
    base, _, key = name.rpartition(".")
    for candidate in (base, PARAMS + base):
        if candidate.startswith(PARAMS) and candidate in known and key.isidentifier():
            return f"{candidate}.{key}"  # a dict parameter's key (Catalog reads its JSON)
    folded = [
        column for column in known if name.lower() in (column.lower(), _shown_name(column).lower())
    ]
    return folded[0] if len(folded) == 1 else None


def _unknown(name: str, fields: Collection[str]) -> str:
    names = [_shown_name(column) for column in fields][:12]
    listed = ", ".join(names) if names else "type, duration_s, size_bytes"
    return f"No field {name!r}: fields are {listed}."


def _shown_name(column: str) -> str:
    for prefix in (PARAMS, METRICS):
        if column.startswith(prefix):
            return column[len(prefix) :]
    return column


def _values(raw: str) -> list[object]:
    """An unquoted value: a number (and its text), a bool, None, or text."""
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return [lowered == "true"]
    if lowered in ("none", "null"):
        return [None]
    if _NUMBER.fullmatch(raw):
        number = float(raw) if any(c in raw for c in ".eE") else int(raw)
        return [number, raw]
    return [raw]


def _clause(column: str, op: str, values: list[object]) -> str:
    """One comparison in the catalog's expression language (values as literals)."""
    if op == "==" and len(values) > 1:
        return f"{column} in {values!r}"
    if op == "!=" and len(values) > 1:
        return f"{column} not in {values!r}"
    return f"{column} {op} {values[0]!r}"
