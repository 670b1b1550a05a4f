"""A notebook cell as a task type: what ``%%labtask`` builds before anything runs.

The line ``scores seed=range(5) C=[0.1, 1.0] --wait`` names the task type and
its parameters (a list, tuple or range sweeps; anything else is fixed). The
cell's body becomes ``run()``; the names it reads from the notebook travel
with the task type to the workers, and their content fingerprints, with the
cell's source, make up the type's ``code_version``: edit the cell or change
``X`` and only what depends on it reruns.

``--config params.yaml`` adds the file's keys as parameters, as if written on
the line (lists sweep). A parameter also on the line takes the line's value,
in the file's place in the sweep order: a Jupyter user tries ``seed=range(10)``
without editing the file, as command-line overrides work in config tools. The
tasks keep the file (not the line) as their config; the line is the cell's.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import keyword
import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, LabnbError
from ..model.cell_versions import CellVersion
from ..model.config_files import ConfigFile, as_config
from ..model.config_sweep import Builder, sweeps, top_level
from ..model.sweeps import combinations
from ..model.tasks import meta_of, normalise, task
from .fingerprint import Unfingerprintable, fingerprint, normalised_source

FLAGS = {"--wait": "wait", "--bust-cache": "bust_cache", "--mlflow": "mlflow"}
VALUED = {
    "--lab": "lab",
    "--max-parallel": "max_parallel",
    "--ignore": "ignore",
    "--config": "config",
}


class LineError(LabnbError, ValueError):
    """A bad ``%%labtask`` line: shown as one line, and nothing runs."""


@dataclass
class CellSpec:
    name: str
    expressions: dict[str, str] = field(default_factory=dict)
    lab: str | None = None
    wait: bool = False
    bust_cache: bool = False
    mlflow: bool = False
    max_parallel: int | None = None
    ignore: list[str] = field(default_factory=list)
    config: str | None = None
    """``--config params.yaml``: more parameters, from a file (``config_values``)."""


def split_words(line: str) -> list[str]:
    """Split at top-level spaces (not inside brackets or quotes); ``a = 1`` is one word."""
    words: list[str] = []
    current, depth, quote = "", 0, ""
    for char in line:
        if quote:
            current += char
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote, current = char, current + char
        elif char in "([{":
            depth, current = depth + 1, current + char
        elif char in ")]}":
            depth, current = depth - 1, current + char
        elif char.isspace() and depth == 0:
            if current:
                words.append(current)
            current = ""
        else:
            current += char
    if quote or depth:
        raise LineError("unbalanced brackets or quotes in the line")
    if current:
        words.append(current)
    joined: list[str] = []
    for word in words:
        if joined and (
            (word.startswith("=") and not word.startswith("==")) or _ends_with_assign(joined[-1])
        ):
            joined[-1] += word
        else:
            joined.append(word)
    return joined


def _ends_with_assign(word: str) -> bool:
    return word.endswith("=") and not word.endswith(("==", "!=", "<=", ">="))


def parse_keywords(words: list[str]) -> dict[str, str]:
    """``name=expression`` words, in order; names must be identifiers."""
    expressions: dict[str, str] = {}
    for word in words:
        name, equals, expression = word.partition("=")
        if not equals or not expression:
            raise LineError(f"expected name=value, got {word!r}")
        if not name.isidentifier() or keyword.iskeyword(name):
            raise LineError(f"{name!r} is not a valid parameter name")
        if name in expressions:
            raise LineError(f"parameter {name!r} is given twice")
        expressions[name] = expression
    return expressions


def parse_line(line: str) -> CellSpec:
    words = split_words(line)
    options: dict[str, Any] = {"ignore": []}
    rest: list[str] = []
    position = 0
    while position < len(words):
        word = words[position]
        if word in FLAGS:
            options[FLAGS[word]] = True
        elif word in VALUED:
            if position + 1 >= len(words):
                raise LineError(f"{word} needs a value")
            position += 1
            options.setdefault(VALUED[word], [])
            value = words[position]
            if word == "--ignore":
                options["ignore"].extend(name for name in value.split(",") if name)
            else:
                options[VALUED[word]] = value
        elif word.startswith("-"):
            raise LineError(f"unknown option {word} (options: {', '.join([*FLAGS, *VALUED])})")
        else:
            rest.append(word)
        position += 1
    if not rest:
        raise LineError(
            "usage: %%labtask NAME [param=value ...] [--config FILE] [--wait] [--lab LAB] ..."
        )
    name, *keyword_words = rest
    if not name.isidentifier() or keyword.iskeyword(name):
        raise LineError(f"{name!r} is not a valid task name")
    if options.get("max_parallel") is not None:
        try:
            options["max_parallel"] = int(options["max_parallel"])
        except ValueError:
            raise LineError("--max-parallel takes a whole number") from None
        if options["max_parallel"] < 1:
            raise LineError("--max-parallel takes a whole number of at least 1")
    return CellSpec(name, parse_keywords(keyword_words), **options)


def evaluate(
    expressions: dict[str, str], namespace: dict[str, Any], owner: str
) -> tuple[dict[str, list[Any]], list[str]]:
    """Each parameter's values, and which parameters are swept.

    A list, tuple or range sweeps; anything else is a fixed value.
    """
    values: dict[str, list[Any]] = {}
    swept: list[str] = []
    for name, expression in expressions.items():
        try:
            value = eval(expression, namespace)  # the user's own notebook expression
        except Exception as error:
            raise LineError(f"{name}={expression}: {type(error).__name__}: {error}") from None
        if isinstance(value, (list, tuple, range)):
            options = list(value)
            swept.append(name)
        else:
            options = [value]
        try:
            values[name] = [normalise(option, owner, name) for option in options]
        except TypeError as error:
            raise LineError(str(error)) from None
    return values, swept


def config_values(path: str, owner: str) -> tuple[ConfigFile, dict[str, list[Any]], list[str]]:
    """The parameters of ``--config FILE``: each key's values, and which are swept.

    The file's keys become the cell's parameters, as if written on the line: a
    list sweeps, a scalar or a mapping is one value (``config_sweep`` explains
    the rules). Raises ``ConfigError`` (file, key, line) for a bad file.
    """
    if len(path) > 1 and path[0] == path[-1] and path[0] in "'\"":
        path = path[1:-1]  # --config "my params.yaml"
    source = as_config(os.path.expanduser(path))
    mapping = top_level(source)
    for key, item in mapping.items():
        if not key.isidentifier() or keyword.iskeyword(key):
            raise ConfigError(source.name, key, item.line, "not a valid parameter name")
    values = Builder(source).options(owner, {}, mapping, ())
    swept = [key for key, item in mapping.items() if sweeps(item)]
    return source, values, swept


def merge_values(
    config: tuple[dict[str, list[Any]], list[str]], line: tuple[dict[str, list[Any]], list[str]]
) -> tuple[dict[str, list[Any]], list[str]]:
    """The file's parameters with the line's: a name on the line replaces the file's
    value (in the file's place in the sweep order); the others are added after."""
    (file_values, file_swept), (line_values, line_swept) = config, line
    values = {**file_values, **line_values}
    swept = [
        name
        for name in values
        if name in line_swept or (name in file_swept and name not in line_values)
    ]
    return values, swept


def names_read(source: str) -> set[str]:
    """Names the cell reads and does not define itself."""
    tree = ast.parse(source)
    loaded: set[str] = set()
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return loaded - bound


def make_task_type(
    spec: CellSpec, source: str, namespace: dict[str, Any], fields: list[str] | None = None
) -> type:
    """The task type for this cell, its inputs captured and fingerprinted now; its
    parameters are ``fields`` (default: the line's)."""
    fields = list(spec.expressions) if fields is None else fields
    try:
        wanted = names_read(source)
    except SyntaxError as error:
        raise LineError(f"the cell is not valid Python: {error}") from None
    inputs = {
        name: namespace[name]
        for name in sorted(wanted - set(fields))
        if name in namespace
        and not (name in vars(builtins) and namespace[name] is vars(builtins)[name])
    }
    # The cell's syntax tree, not its text: a comment or reformatting reruns nothing.
    digest = hashlib.blake2b(normalised_source(source).encode(), digest_size=16)
    version = CellVersion(spec.name, source)
    for name, value in inputs.items():
        if name in spec.ignore:
            continue
        try:
            version.inputs[name] = CellVersion.input(value, fingerprint(value))
        except Unfingerprintable as error:
            raise LineError(
                f"cannot fingerprint {name!r} ({type(value).__name__}: {error}); "
                f"pass --ignore {name} to leave it out of the cache key"
            ) from None
        digest.update(f"{name}={version.inputs[name][1]};".encode())
    cls = type(
        spec.name,
        (),
        {
            "__annotations__": dict.fromkeys(fields, Any),
            "__module__": "__main__",
            "__qualname__": spec.name,
            "__doc__": f"The %%labtask cell {spec.name!r}.",
            "run": run_cell,
            "_labnb_cell_source": source,
            "_labnb_cell_inputs": inputs,
            "_labnb_cell_version": version,
        },
    )
    return task(
        code_version=digest.hexdigest(), max_parallel=spec.max_parallel, mlflow_run=spec.mlflow
    )(cls)


def run_cell(self: Any) -> Any:
    """``run()`` of a cell's task: the body with the inputs and parameters bound."""
    namespace = {"__builtins__": builtins, **type(self)._labnb_cell_inputs}
    namespace.update({name: getattr(self, name) for name in meta_of(self).fields})
    return run_source(type(self)._labnb_cell_source, namespace)


def run_source(source: str, namespace: dict[str, Any]) -> Any:
    """Execute ``source``; the value of its last expression (if it ends with one) is returned."""
    tree = ast.parse(source)
    last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    if last is not None:
        tree.body.pop()
    exec(compile(tree, "<%%labtask cell>", "exec"), namespace)
    if last is None:
        return None
    return eval(compile(ast.Expression(last.value), "<%%labtask cell>", "eval"), namespace)


def sweep(task_type: type, values: dict[str, list[Any]]) -> list[Any]:
    """One task per combination of the swept values, in the line's order."""
    return [task_type(**kwargs) for kwargs in combinations(values)]


def as_pandas(name: str, tasks: list[Any], results: dict[Any, Any], swept: list[str]) -> Any:
    """Results indexed by the swept parameters: a Series, or a DataFrame when results are dicts."""
    import pandas as pd

    keys = [tuple(getattr(each, param) for param in swept) for each in tasks]
    if len(swept) > 1:
        index = pd.MultiIndex.from_tuples(keys, names=swept)
    elif swept:
        index = pd.Index([key[0] for key in keys], name=swept[0])
    else:
        index = pd.RangeIndex(len(tasks))
    values = [results.get(each) for each in tasks]
    found = [value for value in values if value is not None]
    if found and all(isinstance(value, dict) for value in found):
        return pd.DataFrame.from_records([value or {} for value in values], index=index)
    return pd.Series(values, index=index, name=name)
