"""The ``@task`` decorator: a class with annotated fields becomes a frozen task type.

A task is a value: its identity is a hash of its type's qualified name, its
``code_version`` and its parameters (see ``identity``), and equality and
hashing follow that id. The decorator keeps the user's class (so pickling by
reference, ``isinstance`` and subclassing behave as usual) and adds a small
set of attributes, all prefixed ``_labnb`` except ``result`` and ``context``,
the two names labtech users read.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from enum import Enum
from typing import Any, Protocol, TypeVar, overload

from frozendict import frozendict

from .formats import PickleFormat, ResultFormat
from .identity import encode, hash_identity, resolve

logger = logging.getLogger("labnb")
logger.setLevel(logging.INFO)

T = TypeVar("T", bound=type)

RESERVED_NAMES = frozenset({"result", "context"})
_SCALAR_TYPES = (str, bool, int, float, type(None))
_DEFAULT_FORMAT = object()
_MISSING = object()

# Task types by (module, qualname): the latest definition wins, as a notebook
# re-running a cell expects. Used to rebuild nested tasks from the cache index.
_TASK_TYPES: dict[tuple[str, str], type] = {}


@dataclasses.dataclass(frozen=True)
class TaskMeta:
    """What the decorator was told about a task type."""

    type_name: str
    module: str
    fields: tuple[str, ...]
    format: ResultFormat | None
    max_parallel: int | None
    mlflow_run: bool
    code_version: str | None
    user_post_init: Callable[[Any], None] | None


class ResultNotAvailable(AttributeError):
    """``task.result`` was read before a Lab ran or loaded the task."""


class Task(Protocol):
    """What every ``@labnb.task`` instance offers, for type checkers.

    The rest of labnb reads a task only through this protocol and the
    accessors below (``task_id``, ``meta_of``...), never through the
    ``_labnb_*`` attributes the decorator adds.
    """

    def run(self) -> Any: ...

    @property
    def result(self) -> Any: ...

    @property
    def context(self) -> Any: ...


def is_task(obj: Any) -> bool:
    return getattr(type(obj), "_labnb_meta", None) is not None


def task_id(task: Any) -> str:
    """The task's stable id (32 hex characters)."""
    return str(task._labnb_id)


def meta_of(task_or_type: Any) -> TaskMeta:
    """What the decorator was told about a task's type (a task or its type)."""
    cls = task_or_type if isinstance(task_or_type, type) else type(task_or_type)
    meta = getattr(cls, "_labnb_meta", None)
    if meta is None:
        raise TypeError(f"{task_or_type!r} is not a labnb task type")
    return meta


def type_name_of(spec: Any) -> str:
    """A task type's stored name, from a task, its type, or the name itself."""
    return spec if isinstance(spec, str) else meta_of(spec).type_name


def dependencies_of(task: Any) -> tuple[Any, ...]:
    """The tasks among ``task``'s parameters (nested in containers too), in field order."""
    return tuple(task._labnb_dependencies)


def stored_params(task: Any) -> dict[str, Any]:
    """The task's parameters in their stored encoding: all an index entry needs to rebuild it."""
    return dict(task._labnb_stored["params"])


def attach_result(task: Any, payload: Any) -> None:
    """Make ``payload`` (a ``formats.Payload``) what ``task.result`` returns."""
    task.__dict__["_labnb_result"] = payload


def attach_context(task: Any, context: Any) -> None:
    """Make ``context`` what ``task.context`` returns while it runs."""
    task.__dict__["_labnb_context"] = context


@overload
def task(cls: T) -> T: ...
@overload
def task(
    *,
    cache: ResultFormat | type[ResultFormat] | None = ...,
    max_parallel: int | None = ...,
    mlflow_run: bool = ...,
    code_version: str | None = ...,
) -> Callable[[T], T]: ...
def task(
    cls: Any = None,
    *,
    cache: Any = _DEFAULT_FORMAT,
    max_parallel: int | None = None,
    mlflow_run: bool = False,
    code_version: str | None = None,
) -> Any:
    """Turn a class with annotated fields and a ``run()`` method into a task type.

    ``cache`` is the result format (a ``ResultFormat``; ``None`` never caches),
    ``max_parallel`` bounds how many tasks of this type run at once,
    ``mlflow_run`` makes each execution an mlflow run and ``code_version`` is
    part of the id: bump it when ``run()`` changes meaning.
    """
    if cache is _DEFAULT_FORMAT:
        cache = PickleFormat()
    elif isinstance(cache, type) and issubclass(cache, ResultFormat):
        cache = cache()
    if cache is not None and not isinstance(cache, ResultFormat):
        raise TypeError(f"cache= takes a labnb ResultFormat or None, not {cache!r}")
    if max_parallel is not None and (not isinstance(max_parallel, int) or max_parallel < 1):
        raise ValueError(f"max_parallel must be a positive int or None, not {max_parallel!r}")

    def decorate(cls: T) -> T:
        return _make_task_type(cls, cache, max_parallel, bool(mlflow_run), code_version)

    return decorate(cls) if cls is not None else decorate


def _make_task_type(
    cls: Any,
    fmt: ResultFormat | None,
    max_parallel: int | None,
    mlflow_run: bool,
    code_version: str | None,
) -> Any:
    if not callable(getattr(cls, "run", None)):
        raise TypeError(f"task type {cls.__qualname__} must define a run() method")
    reserved = RESERVED_NAMES.intersection(getattr(cls, "__annotations__", {}))
    if reserved:
        raise TypeError(
            f"task type {cls.__qualname__} cannot have a field named {sorted(reserved)[0]!r}: "
            "labnb uses task.result and task.context"
        )
    hook = getattr(cls, "__post_init__", None)
    if hook is _post_init:
        hook = cls._labnb_meta.user_post_init
    cls.__post_init__ = _post_init  # before @dataclass, so its __init__ calls it
    cls = dataclasses.dataclass(frozen=True, eq=False)(cls)
    cls._labnb_meta = TaskMeta(
        type_name=cls.__qualname__,
        module=cls.__module__,
        fields=tuple(field.name for field in dataclasses.fields(cls)),
        format=fmt,
        max_parallel=max_parallel,
        mlflow_run=mlflow_run,
        code_version=code_version,
        user_post_init=hook,
    )
    for name, member in _TASK_MEMBERS.items():
        setattr(cls, name, member)
    _TASK_TYPES[(cls.__module__, cls.__qualname__)] = cls
    return cls


def task_type_for(module: str, qualname: str) -> type:
    cls = _TASK_TYPES.get((module, qualname))
    return cls if cls is not None else resolve(module, qualname)


# --- members added to every task type ---------------------------------------


def _post_init(self: Any) -> None:
    meta = self._labnb_meta
    for name in meta.fields:
        value = getattr(self, name)
        object.__setattr__(self, name, normalise(value, type(self).__qualname__, name))
    if meta.user_post_init is not None:
        meta.user_post_init(self)


def normalise(value: Any, owner: str, field: str) -> Any:
    """Check a parameter value and make it immutable (lists become tuples, dicts frozendicts)."""
    if type(value) in _SCALAR_TYPES or isinstance(value, Enum) or is_task(value):
        return value
    if isinstance(value, (list, tuple)):
        return tuple(normalise(item, owner, field) for item in value)
    if isinstance(value, (dict, frozendict)):
        for key in value:
            if type(key) is not str:
                raise TypeError(
                    f"{owner}.{field}: dict parameter keys must be str, "
                    f"got a key of type {type(key).__name__}"
                )
        return frozendict({key: normalise(item, owner, field) for key, item in value.items()})
    raise TypeError(
        f"{owner}.{field}: parameter values must be str, bool, int, float, None, an Enum member, "
        f"a task, or a list/tuple/dict of these; got {type(value).__module__}."
        f"{type(value).__qualname__} (pass large objects through Lab(context=...) or an Enum)"
    )


def _task_id(self: Any) -> str:
    cached = self.__dict__.get("_labnb_id")
    if cached is None:
        meta = self._labnb_meta
        params = {name: encode(getattr(self, name)) for name in meta.fields}
        cached = hash_identity(meta.type_name, meta.code_version, params)
        self.__dict__["_labnb_id"] = cached
    return cached


def _stored(self: Any) -> dict[str, Any]:
    """Everything needed to rebuild this task from the index alone."""
    meta = self._labnb_meta
    return {
        "task": meta.type_name,
        "module": meta.module,
        "id": self._labnb_id,
        "params": {name: encode(getattr(self, name), stored=True) for name in meta.fields},
    }


def _dependencies(self: Any) -> tuple[Any, ...]:
    cached = self.__dict__.get("_labnb_deps")
    if cached is None:
        cached = tuple(_nested_tasks(getattr(self, name) for name in self._labnb_meta.fields))
        self.__dict__["_labnb_deps"] = cached
    return cached


def _nested_tasks(values: Any) -> Iterator[Any]:
    for value in values:
        if is_task(value):
            yield value
        elif isinstance(value, tuple):
            yield from _nested_tasks(value)
        elif isinstance(value, frozendict):
            yield from _nested_tasks(value.values())


def _eq(self: Any, other: Any) -> bool:
    if not is_task(other):
        return NotImplemented
    return self._labnb_id == other._labnb_id


def _hash(self: Any) -> int:
    # Derived from the id, not from str hashing, so it is the same in every process.
    return int(self._labnb_id[:15], 16)


def _result(self: Any) -> Any:
    holder = self.__dict__.get("_labnb_result", _MISSING)
    if holder is _MISSING:
        raise ResultNotAvailable(
            f"{self!r} has no result yet: run it with lab.run_tasks([...]) first"
        )
    return holder.value


def _context(self: Any) -> Any:
    context = self.__dict__.get("_labnb_context", _MISSING)
    if context is _MISSING:
        raise AttributeError(f"{type(self).__qualname__}.context is only set while a Lab runs it")
    return context


def _getstate(self: Any) -> dict[str, Any]:
    # Results and context stay behind: they travel separately, once per run.
    state = {name: getattr(self, name) for name in self._labnb_meta.fields}
    state["_labnb_id"] = self._labnb_id
    return state


_TASK_MEMBERS: dict[str, Any] = {
    "__post_init__": _post_init,
    "__eq__": _eq,
    "__hash__": _hash,
    "__getstate__": _getstate,
    "_labnb_id": property(_task_id),
    "_labnb_stored": property(_stored),
    "_labnb_dependencies": property(_dependencies),
    "result": property(_result),
    "context": property(_context),
}
