"""Config files as labnb reads them: their text, and their values with the line of each.

A ``ConfigFile`` is what is kept: the file's name and its text, exactly as
read (comments included), content-addressed by ``digest``. Storage keeps each
text once and entries and run records refer to it by digest, so a task built
from a file can show the file it came from and be built again from it
(``labnb.sweep(T, lab.config_of(task))``).

Reading gives a tree of ``Item``: each value with the (1-based) line it is
written on, so every error about it can name the key and the line:

- YAML (``.yaml``, ``.yml``): PyYAML composes the node tree, whose marks give
  every key's and every list element's line; scalars are built by PyYAML's
  safe constructor. Two things differ from plain ``yaml.safe_load``: a key
  given twice is an error (PyYAML keeps the last silently), and ``1e-3`` is a
  float (YAML 1.2, and what a Python user means; PyYAML's YAML 1.1 rules read
  it as a string).
- TOML (``.toml``, read by ``tomllib``, or ``tomli`` before Python 3.11):
  ``tomllib`` reports lines of syntax errors only, so the line of a key is
  found by scanning the text for the table headers and ``key =`` lines (a
  key inside an inline table is placed on its table's line). A key the scan
  cannot place is reported without a line.
- A dict already loaded: no lines; its text is kept as JSON, so it must hold
  what a file could (str, int, float, bool, None, lists and dicts).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from ..errors import ConfigError

YAML_SUFFIXES = (".yaml", ".yml")
TOML_SUFFIXES = (".toml",)
DICT_NAME = "<dict>"
"""The name of a config given as a dict (its text is JSON)."""
_PLAIN = (str, int, float, bool, type(None))
KeyPath = tuple[str | int, ...]
"""Where a value is: keys, and list positions."""


@dataclass(frozen=True)
class Item:
    """A value of a config file: a scalar, a ``list[Item]`` or a ``dict[str, Item]``."""

    value: Any
    line: int | None
    """Where it is written (1-based): for a mapping's value, its key's line."""

    def plain(self) -> Any:
        """The value with the lines left out (lists and dicts of scalars)."""
        if isinstance(self.value, list):
            return [item.plain() for item in self.value]
        if isinstance(self.value, dict):
            return {key: item.plain() for key, item in self.value.items()}
        return self.value


@dataclass(frozen=True)
class ConfigFile:
    """A config file's name and text, as read (``str()`` gives the text)."""

    name: str
    text: str

    @property
    def kind(self) -> str:
        """``yaml``, ``toml`` or ``json`` (a dict given in code), from the name."""
        return kind_of(self.name)

    @cached_property  # a sweep's thousand tasks share one ConfigFile: hashed once
    def digest(self) -> str:
        """What storage keeps the text under: 32 hex characters of its kind and text."""
        data = f"{self.kind}\n{self.text}".encode()
        return hashlib.blake2b(data, digest_size=16).hexdigest()

    def read(self) -> Item:
        """The values with their lines (raises ``ConfigError`` for a bad file)."""
        if self.kind == "toml":
            return _read_toml(self.name, self.text)
        if self.kind == "json":
            return _from_plain(self.name, json.loads(self.text), (), {})
        return _read_yaml(self.name, self.text)

    @property
    def data(self) -> Any:
        """The values as plain Python (dicts, lists, scalars)."""
        return self.read().plain()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the text to ``path`` (to edit it and sweep again); returns the path."""
        target = Path(path)
        target.write_text(self.text, encoding="utf-8")
        return target

    def __str__(self) -> str:
        return self.text

    def _repr_markdown_(self) -> str:
        return f"`{self.name}`\n\n```{self.kind}\n{self.text.rstrip()}\n```"


def kind_of(name: str) -> str:
    if name == DICT_NAME:
        return "json"
    suffix = Path(name).suffix.lower()
    if suffix in YAML_SUFFIXES:
        return "yaml"
    if suffix in TOML_SUFFIXES:
        return "toml"
    raise ConfigError(name, "", None, "a config file's name ends in .yaml, .yml or .toml")


def as_config(config: Any) -> ConfigFile:
    """A ``ConfigFile`` from a path (str or PathLike), a dict, or a ``ConfigFile``."""
    if isinstance(config, ConfigFile):
        return config
    if isinstance(config, dict):
        _from_plain(DICT_NAME, config, (), {})  # refuses what JSON would not keep
        return ConfigFile(DICT_NAME, json.dumps(config, indent=2, allow_nan=True))
    if isinstance(config, (str, os.PathLike)):
        name = os.fspath(config)
        if not isinstance(name, str):
            raise TypeError("a config path must be text, not bytes")
        kind_of(name)
        try:
            text = Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(name, "", None, f"cannot be read ({error})") from None
        return ConfigFile(name, text)
    raise TypeError(
        f"a config is a path to a .yaml/.toml file, a dict or a ConfigFile, "
        f"not {type(config).__name__}"
    )


def key_path(path: KeyPath) -> str:
    """``("model", "layers", 1)`` as ``model.layers[1]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


# --- YAML -------------------------------------------------------------------

_YAML12_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")
"""Floats YAML 1.2 has and PyYAML's 1.1 rules miss: ``1e-3``, ``5E+2``."""
_LOADERS: dict[str, type] = {}


def _loader() -> type:
    """PyYAML's safe loader (the C one when built), reading ``1e-3`` as a float."""
    if "safe" not in _LOADERS:
        import yaml

        base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

        class Loader(base):  # type: ignore[valid-type,misc]
            pass

        Loader.add_implicit_resolver("tag:yaml.org,2002:float", _YAML12_FLOAT, list("-+0123456789"))
        _LOADERS["safe"] = Loader
    return _LOADERS["safe"]


def _read_yaml(name: str, text: str) -> Item:
    import yaml

    loader = _loader()(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ConfigError(name, "", None, "the file is empty")
        return _from_node(name, loader, node, (), node.start_mark.line + 1)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = None if mark is None else mark.line + 1
        context = error.context or ""
        opened = error.context_mark
        if context and opened is not None and opened.line + 1 != line:
            context += f" (from line {opened.line + 1})"
        problem = ": ".join(part for part in (context, str(error.problem or "")) if part)
        raise ConfigError(name, "", line, f"not valid YAML: {problem}") from None
    except yaml.YAMLError as error:
        raise ConfigError(name, "", None, f"not valid YAML: {error}") from None
    finally:
        loader.dispose()


def _from_node(name: str, loader: Any, node: Any, path: KeyPath, line: int) -> Item:
    import yaml

    if isinstance(node, yaml.SequenceNode):
        return Item(
            [
                _from_node(name, loader, child, (*path, index), child.start_mark.line + 1)
                for index, child in enumerate(node.value)
            ],
            line,
        )
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # YAML's merge keys (<<: *defaults)
        mapping: dict[str, Item] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            key_line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                raise ConfigError(name, key_path(path), key_line, f"key {key!r} is not text")
            if key in mapping:
                raise ConfigError(name, key_path((*path, key)), key_line, "key given twice")
            mapping[key] = _from_node(name, loader, value_node, (*path, key), key_line)
        return Item(mapping, line)
    return Item(loader.construct_object(node, deep=True), line)


# --- TOML -------------------------------------------------------------------

_TOML_ERROR_AT = re.compile(r"\s*\(at line (\d+), column \d+\)\s*$")
_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED = rf"{_KEY_PART}(?:\s*\.\s*{_KEY_PART})*"
_TOML_HEADER = re.compile(rf"^\s*\[\[?\s*({_DOTTED})\s*\]\]?")
_TOML_KEY = re.compile(rf"^\s*({_DOTTED})\s*=")


def _read_toml(name: str, text: str) -> Item:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # the same parser, before it joined the standard library
        import tomli as tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        found = _TOML_ERROR_AT.search(message)
        line = int(found.group(1)) if found else getattr(error, "lineno", None)
        problem = _TOML_ERROR_AT.sub("", message)
        raise ConfigError(name, "", line, f"not valid TOML: {problem}") from None
    return _from_plain(name, data, (), _toml_key_lines(text), line=1)


def _toml_key_lines(text: str) -> dict[KeyPath, int]:
    """Each key path's first line, from table headers and ``key =`` lines (a scan,
    not a parser: multi-line strings may hide or fake a few keys). The n-th
    ``[[name]]`` table is ``(name, n)``."""
    lines: dict[KeyPath, int] = {}
    table: KeyPath = ()
    arrays: dict[tuple[str, ...], int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        header = _TOML_HEADER.match(line)
        if header:
            names = _split_dotted(header.group(1))
            table = names
            if line.lstrip().startswith("[["):
                arrays[names] = arrays.get(names, -1) + 1
                lines.setdefault(names, number)
                table = (*names, arrays[names])
            lines.setdefault(table, number)
            continue
        key = _TOML_KEY.match(line)
        if key:
            lines.setdefault((*table, *_split_dotted(key.group(1))), number)
    return lines


def _split_dotted(dotted: str) -> tuple[str, ...]:
    parts = re.findall(_KEY_PART, dotted)
    return tuple(json.loads(part) if part.startswith('"') else part.strip("'") for part in parts)


def _toml_line(lines: dict[KeyPath, int], path: KeyPath) -> int | None:
    """The line of ``path`` or, failing that, of the nearest enclosing key the scan found."""
    keys = path
    while keys:
        if keys in lines:
            return lines[keys]
        keys = keys[:-1]
    return None


# --- plain values (TOML's, a dict's) ----------------------------------------


def _from_plain(
    name: str,
    value: Any,
    path: KeyPath,
    lines: dict[KeyPath, int],
    line: int | None = None,
) -> Item:
    if isinstance(value, dict):
        mapping = {}
        for key, child in value.items():
            if not isinstance(key, str):
                raise ConfigError(name, key_path(path), line, f"key {key!r} is not text")
            where = (*path, key)
            mapping[key] = _from_plain(name, child, where, lines, _toml_line(lines, where))
        return Item(mapping, line)
    if isinstance(value, (list, tuple)):
        return Item(
            [
                _from_plain(name, child, (*path, index), lines, _toml_line(lines, (*path, index)))
                for index, child in enumerate(value)
            ],
            line,
        )
    if name == DICT_NAME and type(value) not in _PLAIN:
        raise ConfigError(
            name,
            key_path(path),
            None,
            "a config dict holds what a file could (str, int, float, bool, None, lists, "
            f"dicts), not {type(value).__name__}: give an Enum member by its name",
        )
    return Item(value, line)
