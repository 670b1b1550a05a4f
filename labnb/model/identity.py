"""The one canonical encoding of task parameters.

The id hash, the cache index and ``cache_table`` all read parameters through
this module, so they can never disagree. The encoding is JSON text: JSON keeps
``1``, ``1.0`` and ``true`` apart, and sorted keys make dict order irrelevant.

Two forms exist. The *hash form* names nested tasks by id only, so a task's id
depends on its dependencies' ids and nothing else. The *stored form* also
keeps each nested task's own parameters and the modules where types live, so
tasks (Enum members included) can be rebuilt from the index alone.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
from collections.abc import Mapping
from enum import Enum
from typing import Any

from frozendict import frozendict

JSONValue = Any

_SCALARS = (str, bool, int, float, type(None))


def encode(value: Any, *, stored: bool = False) -> JSONValue:
    """Encode a normalised parameter value (see ``tasks.normalise``)."""
    if type(value) in _SCALARS:
        return value
    if isinstance(value, tuple):
        return [encode(item, stored=stored) for item in value]
    if isinstance(value, frozendict):
        return {"dict": {key: encode(item, stored=stored) for key, item in value.items()}}
    if isinstance(value, Enum):
        cls = type(value)
        encoded = {"enum": cls.__qualname__, "name": value.name}
        if stored:
            encoded["module"] = cls.__module__
        return encoded
    meta = getattr(value, "_labnb_meta", None)
    if meta is not None:
        if stored:
            return value._labnb_nested_form
        return {"task": meta.type_name, "id": value._labnb_id}
    raise TypeError(f"cannot encode {type(value).__name__!r} as a task parameter")


def canonical_json(encoded: JSONValue) -> str:
    return json.dumps(encoded, sort_keys=True, separators=(",", ":"))


def hash_identity(type_name: str, code_version: str | None, params: dict[str, JSONValue]) -> str:
    """A task id: 32 hex characters, the same in every process and on every machine."""
    text = canonical_json({"type": type_name, "code_version": code_version, "params": params})
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def decode(encoded: JSONValue, rebuilt: Mapping[str, Any] | None = None) -> Any:
    """Rebuild a parameter value from its stored form. A nested task stored by
    reference (beyond ``tasks.STORED_DEPTH``) is taken from ``rebuilt`` (tasks
    rebuilt so far, by id); LookupError when it is not there."""
    if isinstance(encoded, list):
        return tuple(decode(item, rebuilt) for item in encoded)
    if not isinstance(encoded, dict):
        return encoded
    if "dict" in encoded:
        return frozendict({key: decode(item, rebuilt) for key, item in encoded["dict"].items()})
    if "enum" in encoded:
        return resolve(encoded["module"], encoded["enum"])[encoded["name"]]
    if "task" in encoded and "params" not in encoded:
        found = None if rebuilt is None else rebuilt.get(encoded["id"])
        if found is None:
            raise LookupError(
                f"{encoded['task']} {encoded['id']} is stored by reference (a deep chain): "
                "rebuild it first"
            )
        return found
    if "task" in encoded:
        from .tasks import task_type_for

        cls = task_type_for(encoded["module"], encoded["task"])
        return cls(**{name: decode(item, rebuilt) for name, item in encoded["params"].items()})
    raise ValueError(f"not a stored labnb parameter: {encoded!r}")


def resolve(module: str, qualname: str) -> Any:
    """Find a class by module and qualified name, importing the module if needed."""
    try:
        obj = sys.modules.get(module) or importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise LookupError(
            f"cannot find {module}.{qualname}: define or import it before loading cached tasks"
        ) from exc
    return obj
