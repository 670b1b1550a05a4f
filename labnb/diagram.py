"""Mermaid class diagrams of task types: their fields, result types and dependencies.

``build_task_diagram(tasks)`` returns the diagram's text: one class per task
type reachable from ``tasks`` (nested tasks included), a member per field
with its annotated type, ``run()`` with its annotated result type, and an
arrow from each type to the types its fields hold, labelled with the field
and marked ``many`` when some task holds several of them there.
``display_task_diagram(tasks)`` shows it: in JupyterLab (4.1 and later
render Mermaid in Markdown) as a drawing, elsewhere as the text.

The arrows come from real tasks, not from annotations alone: a field
annotated with a ``Protocol`` points at every type actually passed to it.

``build_run_diagram(run)`` draws one run's task graph instead: a Mermaid
``flowchart`` with a node per task of the run (its text, shortened), an arrow
from each task to the tasks that use its result, and each node coloured by
its state at that moment (waiting, running, done, loaded from the cache,
failed, cancelled, or not started when the run ended first).
``display_run_diagram(run)`` shows it as ``display_task_diagram`` does. A run
found in a record whose tasks cannot be rebuilt here has nodes but no arrows.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .engine.state import RUNNING, WAITING
from .model.tasks import dependencies_of, is_task, meta_of, task_id

DIRECTIONS = ("TB", "BT", "LR", "RL")


@dataclass
class _Relation:
    """A field of one task type that holds tasks of another."""

    many: bool = False


@dataclass
class _Structure:
    types: list[type] = field(default_factory=list)
    relations: dict[tuple[type, str, type], _Relation] = field(default_factory=dict)


def build_task_diagram(tasks: Sequence[Any], *, direction: str = "BT") -> str:
    """The Mermaid ``classDiagram`` text of the task types in ``tasks`` and their dependencies."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
    structure = _structure(tasks)
    names = _class_names(structure.types)
    lines = ["classDiagram", f"    direction {direction}", ""]
    for cls in structure.types:
        lines.extend(_class_lines(cls, names[cls]))
        lines.append("")
    for (parent, name, child), relation in structure.relations.items():
        many = ' "many"' if relation.many else ""
        lines.append(f"    {names[parent]} -->{many} {names[child]}: {name}")
    return "\n".join(lines).rstrip() + "\n"


def display_task_diagram(tasks: Sequence[Any], **kwargs: Any) -> None:
    """Show the diagram: drawn by JupyterLab in a notebook, printed as text elsewhere."""
    show_mermaid(build_task_diagram(tasks, **kwargs))


def show_mermaid(text: str) -> None:
    """Mermaid text as JupyterLab draws it (a Markdown block), or printed outside a kernel."""
    from .display.kernel import in_kernel

    if not in_kernel():
        print(text)
        return
    from IPython.display import display

    display(
        {"text/markdown": f"```mermaid\n{text}```\n", "text/plain": text},
        raw=True,
    )


def _structure(tasks: Iterable[Any]) -> _Structure:
    structure = _Structure()
    seen: set[int] = set()
    pending = [task for task in tasks if is_task(task)]
    while pending:
        task = pending.pop(0)
        if id(task) in seen:
            continue
        seen.add(id(task))
        cls = type(task)
        if cls not in structure.types:
            structure.types.append(cls)
        for name in meta_of(task).fields:
            counts: dict[type, int] = {}
            for nested in _tasks_in(getattr(task, name)):
                counts[type(nested)] = counts.get(type(nested), 0) + 1
                pending.append(nested)
            for child, count in counts.items():
                relation = structure.relations.setdefault((cls, name, child), _Relation())
                relation.many = relation.many or count > 1 or _is_collection(getattr(task, name))
    return structure


def _tasks_in(value: Any) -> list[Any]:
    if is_task(value):
        return [value]
    if isinstance(value, tuple):
        return [task for item in value for task in _tasks_in(item)]
    if isinstance(value, dict):
        return [task for item in value.values() for task in _tasks_in(item)]
    return []


def _is_collection(value: Any) -> bool:
    return isinstance(value, (tuple, dict))


def _class_names(types: list[type]) -> dict[type, str]:
    """Mermaid identifiers: the class name, made unique (two notebook cells may reuse one)."""
    names: dict[type, str] = {}
    used: set[str] = set()
    for cls in types:
        base = re.sub(r"\W", "_", cls.__name__) or "Task"
        name, n = base, 2
        while name in used:
            name, n = f"{base}_{n}", n + 1
        used.add(name)
        names[cls] = name
    return names


def _class_lines(cls: type, name: str) -> list[str]:
    hints = _hints(cls)
    lines = [f"    class {name}"]
    for field_name in meta_of(cls).fields:
        lines.append(f"    {name} : {format_type(hints.get(field_name, Any))} {field_name}")
    result = _hints(cls.run).get("return", Any)  # type: ignore[attr-defined]
    lines.append(f"    {name} : run() {format_type(result)}")
    return lines


def _hints(obj: Any) -> dict[str, Any]:
    """Resolved annotations where they resolve; the raw ones (strings too) where they don't."""
    try:
        return typing.get_type_hints(obj)
    except Exception:  # a forward reference to a name that only existed in a notebook cell
        return dict(getattr(obj, "__annotations__", {}))


def format_type(hint: Any) -> str:
    """A type as Mermaid writes it: ``list~ClassifierTask~``, ``str | None``."""
    if hint is Any:
        return "Any"
    if hint is None or hint is type(None):
        return "None"
    if isinstance(hint, str):
        return re.sub(r"[\[\]]", "~", hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or type(hint).__name__ == "UnionType":
        return " | ".join(format_type(arg) for arg in args)
    if origin is not None:
        inner = ", ".join(format_type(arg) for arg in args)
        return f"{getattr(origin, '__name__', str(origin))}~{inner}~" if inner else origin.__name__
    return getattr(hint, "__name__", str(hint))


__all__ = ["build_task_diagram", "display_task_diagram", "format_type"]


# --- a run's task graph --------------------------------------------------------------

STATE_STYLES = {
    "waiting": "fill:#f6f8fa,stroke:#8c959f,color:#24292f",
    "running": "fill:#ddf4ff,stroke:#0969da,color:#0a3069",
    "done": "fill:#dafbe1,stroke:#1a7f37,color:#0f3d1e",
    "loaded": "fill:#eaeef2,stroke:#57606a,color:#24292f",
    "failed": "fill:#ffebe9,stroke:#cf222e,color:#82071e",
    "cancelled": "fill:#fff8c5,stroke:#9a6700,color:#4d2d00",
    "notstarted": "fill:#ffffff,stroke:#8c959f,color:#57606a,stroke-dasharray:4 3",
}
"""Node styles by task state; ``notstarted``: still waiting when its run ended."""
LABEL_CHARACTERS = 60


def build_run_diagram(run: Any, *, direction: str = "LR") -> str:
    """The Mermaid ``flowchart`` of a run's tasks (a ``labnb.Run``), coloured by state."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
    state = run.state
    with state.lock:
        ended = state.outcome != RUNNING
        records = [
            (
                key,
                record.task,
                "notstarted" if ended and record.status == WAITING else record.status,
            )
            for key, record in state.items()
        ]
    ids = {key: f"t{index}" for index, (key, _, _) in enumerate(records)}
    lines = ["flowchart " + direction]
    by_state: dict[str, list[str]] = {}
    for key, task, status in records:
        lines.append(f'    {ids[key]}["{_label(task)}"]')
        by_state.setdefault(status, []).append(ids[key])
    for key, task, _ in records:
        if is_task(task):
            for dependency in dict.fromkeys(task_id(dep) for dep in dependencies_of(task)):
                if dependency in ids:
                    lines.append(f"    {ids[dependency]} --> {ids[key]}")
    for status, style in STATE_STYLES.items():
        if status in by_state:
            lines.append(f"    classDef {status} {style}")
            lines.append(f"    class {','.join(by_state[status])} {status}")
    return "\n".join(lines) + "\n"


def display_run_diagram(run: Any, **kwargs: Any) -> None:
    """Show a run's task graph: drawn by JupyterLab in a notebook, printed as text elsewhere."""
    show_mermaid(build_run_diagram(run, **kwargs))


def _label(task: Any) -> str:
    """A task's text for a node: shortened, with what Mermaid reads as markup escaped."""
    text = repr(task)
    if len(text) > LABEL_CHARACTERS:
        text = text[: LABEL_CHARACTERS - 1] + "…"
    return (
        text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    )
