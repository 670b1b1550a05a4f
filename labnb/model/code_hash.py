"""A task type's code as a short hash: what "its code changed" means.

labtech's rule stays labnb's: a ``@task`` result is keyed by the class name,
``code_version`` and the parameters, so editing ``run()`` does not silently
rerun months of results. But every entry records the hash of the code that
made it, so labnb can say which results an older version of the code made
("stale"), and ``@labnb.task(code_version="auto")`` makes the hash the
``code_version``, so an edit reruns by itself.

The hash covers the class's methods and the functions they call that are the
user's own (defined in the class's module, or in the notebook), followed
through calls; a library function counts by its library's version. Each
function counts by its source as a syntax tree without docstrings, so
comments, formatting and docstrings change nothing. Where the source cannot
be read (a class shipped to another process by value), the bytecode is
hashed instead; the two kinds are told apart (``src:``/``code:``), and
hashes of different kinds are never compared.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import inspect
import sys
import textwrap
import types
import weakref
from collections.abc import Iterator
from typing import Any

SOURCE, BYTECODE = "src:", "code:"
_DIGEST_SIZE = 8


def normalised_source(source: str) -> str:
    """``source`` as its syntax tree, without docstrings: comments, blank lines,
    formatting and docstrings change nothing, so only an edit that can change a
    result changes a hash. Source that does not parse is used as it is."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
            # A cell that is only a string returns it: that string is its result.
            and not (isinstance(node, ast.Module) and len(body) == 1)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


_CURRENT: weakref.WeakKeyDictionary[type, tuple[tuple[types.FunctionType, ...], str]] = (
    weakref.WeakKeyDictionary()
)
"""Per class: the functions its hash covered and the hash. Holding the functions
keeps their ids from being reused, so "the same functions" is an ``is`` check."""


def code_hash(cls: type) -> str:
    """``src:<hex>`` (or ``code:<hex>`` where some source could not be read),
    computed again only when a function it covers was redefined."""
    functions = list(_code_of(cls))
    covered = tuple(function for _, function in functions)
    known = _CURRENT.get(cls)
    if (
        known is not None
        and len(known[0]) == len(covered)
        and all(a is b for a, b in zip(known[0], covered, strict=True))
    ):
        return known[1]
    value = _hash(functions)
    _CURRENT[cls] = (covered, value)
    return value


def _hash(functions: list[tuple[str, types.FunctionType]]) -> str:
    digest = hashlib.blake2b(digest_size=_DIGEST_SIZE)
    kind = SOURCE
    for name, function in functions:
        digest.update(f"{name}\0".encode())
        text = _source(function)
        if text is None:
            kind = BYTECODE
            digest.update(_bytecode(function.__code__, function.__doc__))
        else:
            digest.update(text.encode())
    return kind + digest.hexdigest()


def same_code(recorded: str | None, current: str | None) -> bool | None:
    """Whether an entry's recorded hash is the current one; None when that cannot
    be told (nothing recorded, or hashes of different kinds)."""
    if recorded is None or current is None:
        return None
    if recorded.split(":", 1)[0] != current.split(":", 1)[0]:
        return None
    return recorded == current


def _code_of(cls: type) -> Iterator[tuple[str, types.FunctionType]]:
    """The class's own functions, then the user functions they call, each once."""
    pending: list[tuple[str, types.FunctionType]] = []
    for name, member in sorted(vars(cls).items()):
        function = _function(member)
        if function is not None and _written_by_the_user(function):
            pending.append((f"{cls.__qualname__}.{name}", function))
    seen: set[int] = set()
    while pending:
        name, function = pending.pop(0)
        if id(function) in seen:
            continue
        seen.add(id(function))
        yield name, function
        for called_name, called in sorted(_calls(function, cls.__module__).items()):
            pending.append((called_name, called))


def _written_by_the_user(function: types.FunctionType) -> bool:
    """Not what ``@dataclass`` generates (``__init__``: exec'd ``<string>`` code;
    ``__repr__``: wrapped in dataclasses' own) nor what ``@labnb.task`` adds:
    those change with Python and labnb versions, not with the user's code."""
    generated = function.__code__.co_filename in ("<string>", dataclasses.__file__)
    return not generated and not (function.__module__ or "").startswith("labnb.")


def _function(member: Any) -> types.FunctionType | None:
    if isinstance(member, (staticmethod, classmethod)):
        member = member.__func__
    if isinstance(member, property):
        member = member.fget
    return member if isinstance(member, types.FunctionType) else None


def _calls(function: types.FunctionType, module: str) -> dict[str, types.FunctionType]:
    """Functions this function reads from its globals that are the user's own
    (the task's module, or the notebook: ``__main__``); nested code included."""
    namespace = function.__globals__
    found: dict[str, types.FunctionType] = {}
    codes = [function.__code__]
    while codes:
        code = codes.pop()
        codes.extend(const for const in code.co_consts if isinstance(const, types.CodeType))
        for name in code.co_names:
            value = namespace.get(name)
            if isinstance(value, types.FunctionType) and value.__module__ in (module, "__main__"):
                found[name] = value
    return found


def _source(function: types.FunctionType) -> str | None:
    try:
        return normalised_source(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError):
        return None


def _bytecode(code: types.CodeType, doc: str | None) -> bytes:
    """Bytecode, names and constants (nested code too), without line numbers or
    the docstring, which change nothing the code does."""
    consts = list(code.co_consts)
    if consts and doc is not None and consts[0] == doc:
        consts = consts[1:]
    parts = [code.co_code, repr(code.co_names).encode(), repr(code.co_varnames).encode()]
    for const in consts:
        parts.append(
            _bytecode(const, None) if isinstance(const, types.CodeType) else repr(const).encode()
        )
    parts.append(f"python{sys.version_info[0]}.{sys.version_info[1]}".encode())
    return b"\0".join(parts)
