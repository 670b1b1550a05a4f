"""``labnb.sweep(TaskType, "params.yaml")``: a config file's values as a list of tasks.

The top-level mapping gives the task type's fields. For each field:

- a scalar is a fixed value;
- a list sweeps: one task per element (the cartesian product of every swept
  field, in the file's order, the first varying slowest: ``sweeps.combinations``,
  the order ``%%labtask`` lines sweep in);
- a mapping, for a field whose type is a task type, builds that dependency
  task from its own fields, and may itself sweep: the product spans the
  nested lists too (a list of such mappings sweeps over all they build);
- ``{sweep: [...]}`` always sweeps. It is how a field whose type is a list or
  tuple (``layers: tuple[int, ...]``) sweeps: for such a field a plain list is
  one value, ``layers: [64, 32]``, as it is in code.

Values are checked before any task is made, so that a bad file is one
``ConfigError`` naming the key and its line, and no task is returned: a key
that is not a field, a required field left out, and a value that does not
fit the field's declared type (``int``, ``float`` (an int fits), ``str``,
``bool``, ``None``, ``Optional``/unions, ``Literal``, ``Enum`` (a member's
name), task types, lists, tuples, dicts; other annotations, and ``Any``, take
any value). Then every value goes through the check task construction makes
(``tasks.normalise``), and the task is constructed; what construction still
refuses (a ``post_init`` check) is reported on the key of the task's mapping.

Values are taken as written: ``1`` and ``1.0`` are different values, as in
Python, so the tasks are those the same sweep written in code makes, with the
same ids. Every task made carries the ``ConfigFile`` (``tasks.config_origin``)
so that a run records where it came from; it is not part of the id.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConfigError, ParameterError
from .config_files import ConfigFile, Item, as_config, key_path
from .sweeps import combinations
from .tasks import attach_config, is_task_type, meta_of, normalise

SWEEP = "sweep"
"""``{sweep: [...]}``: the explicit form of a swept field."""
Path = tuple[str | int, ...]
_SEQUENCES = (list, tuple, Sequence, typing.Sequence)
_MAPPINGS = (dict, Mapping, typing.Mapping)


def sweep(task_type: type, config: Any) -> list[Any]:
    """The tasks a config describes: ``config`` is a path to a ``.yaml``/``.yml``/``.toml``
    file, a dict already loaded, or a ``ConfigFile`` (``lab.config_of(task)``).

    Raises ``ConfigError`` (file, key, line) for a bad config, before any task exists.
    """
    if not is_task_type(task_type):
        raise TypeError(f"sweep() takes a @labnb.task class, not {task_type!r}")
    source = as_config(config)
    return Builder(source).tasks(task_type, source.read(), ())


def sweeps(item: Item) -> bool:
    """Whether a field's item sweeps whatever the field's type: ``{sweep: [...]}``, or a
    list for a field of no declared type."""
    return isinstance(item.value, list) or _is_sweep_form(item.value)


def _is_sweep_form(value: Any) -> bool:
    return isinstance(value, dict) and list(value) == [SWEEP]


def top_level(source: ConfigFile) -> dict[str, Item]:
    """The file's top-level mapping (a ``ConfigError`` if it is something else)."""
    root = source.read()
    if not isinstance(root.value, dict):
        raise ConfigError(
            source.name, "", root.line, "the file must be a mapping of field names to values"
        )
    return root.value


class Builder:
    """Tasks and field values from one config's items; every error names ``source``."""

    def __init__(self, source: ConfigFile) -> None:
        self.source = source

    def error(self, path: Path, line: int | None, problem: str) -> ConfigError:
        return ConfigError(self.source.name, key_path(path), line, problem)

    def tasks(self, task_type: type, item: Item, path: Path) -> list[Any]:
        """Every task of ``task_type`` that ``item`` (a mapping of its fields) sweeps over."""
        owner = meta_of(task_type).type_name
        if not isinstance(item.value, dict):
            raise self.error(path, item.line, f"expected a mapping of {owner}'s fields")
        declared = {f.name: f for f in dataclasses.fields(task_type) if f.init}
        for key, child in item.value.items():
            if key not in declared:
                fields = ", ".join(declared) or "none"
                raise self.error(
                    (*path, key), child.line, f"unknown key: {owner}'s fields are {fields}"
                )
        for name, field in declared.items():
            required = (
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
            )
            if required and name not in item.value:
                raise self.error(
                    (*path, name), item.line, f"missing: {owner} has no default for {name}"
                )
        options = self.options(owner, field_types(task_type), item.value, path)
        made = []
        for kwargs in combinations(options):
            try:
                task = task_type(**kwargs)
            except Exception as error:
                raise self.error(
                    path, item.line, f"{owner} refused {kwargs}: {type(error).__name__}: {error}"
                ) from None
            attach_config(task, self.source)
            made.append(task)
        return made

    def options(
        self, owner: str, hints: dict[str, Any], mapping: dict[str, Item], path: Path
    ) -> dict[str, list[Any]]:
        """Each key's values: one for a fixed value, several for a swept one."""
        return {
            key: self.field_options(owner, hints.get(key, Any), child, (*path, key))
            for key, child in mapping.items()
        }

    def field_options(self, owner: str, hint: Any, item: Item, path: Path) -> list[Any]:
        value = item.value
        if _is_sweep_form(value):
            inner = value[SWEEP]
            if not isinstance(inner.value, list):
                raise self.error(path, inner.line, "sweep: takes a list of values")
            elements: list[Item] | None = inner.value
        elif isinstance(value, list) and not _is_sequence(hint):
            elements = value
        else:
            elements = None
        if elements is None:
            return self.values(owner, hint, item, path)
        if not elements:
            raise self.error(path, item.line, "an empty list sweeps over nothing")
        found: list[Any] = []
        for index, element in enumerate(elements):
            found.extend(self.values(owner, hint, element, (*path, index)))
        return found

    def values(self, owner: str, hint: Any, item: Item, path: Path) -> list[Any]:
        """One value, or, for a mapping of a task-typed field, every task it sweeps."""
        nested = _task_type_in(hint)
        if nested is not None and isinstance(item.value, dict):
            return self.tasks(nested, item, path)
        value = self.checked(hint, item, path)
        field = next((part for part in path if isinstance(part, str)), "")
        try:
            normalise(value, owner, field)
        except ParameterError as error:
            raise self.error(path, item.line, str(error).partition(": ")[2]) from None
        return [value]

    def checked(self, hint: Any, item: Item, path: Path) -> Any:
        """``item``'s value if it fits ``hint`` (an Enum member for its name), else an error."""
        problem = self._misfit(hint, item, path)
        if isinstance(problem, _Fit):
            return problem.value
        raise self.error(path, item.line, problem)

    def _misfit(self, hint: Any, item: Item, path: Path) -> _Fit | str:
        value = item.value
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        if hint is Any or isinstance(hint, (typing.TypeVar, str)):
            return _Fit(item.plain())
        if _is_union(hint):
            for arm in args:
                fit = self._try(arm, item, path)
                if fit is not None:
                    return fit
            return _wrong(hint, value)
        if origin is typing.Literal:
            plain = item.plain()
            return _Fit(plain) if plain in args else _wrong(hint, value)
        if hint is None or hint is type(None):
            return _Fit(None) if value is None else _wrong(hint, value)
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            if isinstance(value, str) and value in hint.__members__:
                return _Fit(hint[value])
            names = ", ".join(hint.__members__)
            return f"expected one of {hint.__qualname__}'s names ({names}), got {value!r}"
        if is_task_type(hint):
            if not isinstance(value, dict):
                return _wrong(hint, value, f"a mapping of {hint.__qualname__}'s fields")
            made = self.tasks(hint, item, path)
            if len(made) != 1:
                return "a task inside a list or dict value cannot sweep (use sweep: [...])"
            return _Fit(made[0])
        if hint in (bool, int, float, str):
            kinds = (int, float) if hint is float else (hint,)
            if type(value) in kinds:
                return _Fit(value)
            return _wrong(hint, value)
        container = origin or hint
        if container in _SEQUENCES or (isinstance(container, type) and container in (list, tuple)):
            if not isinstance(value, list):
                return _wrong(hint, value, "a list")
            if container is tuple and args and args[-1] is not Ellipsis:
                if len(args) != len(value):
                    return f"expected a list of {len(args)} values, got {len(value)}"
                arms = list(args)
            else:
                arms = [args[0] if args else Any] * len(value)
            return _Fit([
                self.checked(arm, element, (*path, index))
                for index, (arm, element) in enumerate(zip(arms, value, strict=True))
            ])  # fmt: skip
        if container in _MAPPINGS:
            if not isinstance(value, dict):
                return _wrong(hint, value, "a mapping")
            arm = args[1] if len(args) == 2 else Any
            return _Fit({k: self.checked(arm, v, (*path, k)) for k, v in value.items()})
        return _Fit(item.plain())  # an annotation labnb does not check: construction decides

    def _try(self, hint: Any, item: Item, path: Path) -> _Fit | None:
        try:
            fit = self._misfit(hint, item, path)
        except ConfigError:
            return None
        return fit if isinstance(fit, _Fit) else None


@dataclasses.dataclass(frozen=True)
class _Fit:
    value: Any


def _wrong(hint: Any, value: Any, expected: str | None = None) -> str:
    wanted = expected or _describe(hint)
    got = "null" if value is None else f"{type(value).__name__} {_shown(value)}"
    return f"expected {wanted}, got {got}"


def _shown(value: Any) -> str:
    if isinstance(value, (list, dict)):
        return "(" + ("a list" if isinstance(value, list) else "a mapping") + ")"
    return repr(value)


def _describe(hint: Any) -> str:
    if isinstance(hint, type):
        return "null" if hint is type(None) else f"{hint.__qualname__}"
    return str(hint).replace("typing.", "")


def _is_sequence(hint: Any) -> bool:
    """Whether a list in the file is one value of this field (not a sweep)."""
    arms = typing.get_args(hint) if _is_union(hint) else (hint,)
    return any((typing.get_origin(arm) or arm) in (*_SEQUENCES, list, tuple) for arm in arms)


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) is typing.Union or isinstance(hint, types.UnionType)


def _task_type_in(hint: Any) -> type | None:
    """The task type a field holds (also ``T | None``), when it is one."""
    if is_task_type(hint):
        return typing.cast(type, hint)
    if _is_union(hint):
        found = [arm for arm in typing.get_args(hint) if is_task_type(arm)]
        if len(found) == 1:
            return typing.cast(type, found[0])
    return None


def field_types(task_type: type) -> dict[str, Any]:
    """The declared type of each field; ``Any`` where the annotation cannot be resolved."""
    try:
        return typing.get_type_hints(task_type)
    except Exception:
        pass
    hints: dict[str, Any] = {}
    module = sys.modules.get(task_type.__module__)
    namespace = dict(vars(module)) if module is not None else {}
    for cls in reversed(task_type.__mro__):
        for name, annotation in getattr(cls, "__annotations__", {}).items():
            if isinstance(annotation, str):
                try:
                    annotation = eval(annotation, namespace)  # the class's own annotation
                except Exception:
                    annotation = Any
            hints[name] = annotation
    return hints
