"""Content fingerprints of notebook values, for the cache key of ``%%labtask`` cells.

A cell's results must be recomputed when a value it reads changes (``X`` is
reloaded, a helper function is edited) and only then. So each value is hashed
by content: arrays and DataFrames by their data (pandas' own vectorised
hashing, NumPy's raw buffer), functions and classes by their source, modules
by name and version, and plain data by its pickle. Values that have no stable
content hash are refused with a message naming them.
"""

from __future__ import annotations

import hashlib
import inspect
import pickle
import textwrap
import types
from typing import Any

from ..errors import LabnbError
from ..model.code_hash import normalised_source


class Unfingerprintable(LabnbError, TypeError):
    """A value whose content cannot be hashed reliably."""


def fingerprint(value: Any) -> str:
    digest = hashlib.blake2b(digest_size=16)
    _feed(digest, value, depth=0, seen=set())
    return digest.hexdigest()


def _feed(digest: Any, value: Any, depth: int, seen: set[int]) -> None:
    if depth > 20:
        raise Unfingerprintable("nested too deeply")
    if id(value) in seen:  # a function that refers to itself, or a shared object
        digest.update(b"<seen>")
        return
    kind = type(value)
    digest.update(f"{kind.__module__}.{kind.__qualname__}:".encode())
    if value is None or kind in (bool, int, float, complex, str, bytes):
        digest.update(repr(value).encode())
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        for item in items:
            _feed(digest, item, depth + 1, seen)
    elif isinstance(value, dict):
        for key in sorted(value, key=repr):
            _feed(digest, key, depth + 1, seen)
            _feed(digest, value[key], depth + 1, seen)
    elif isinstance(value, types.ModuleType):
        root = value.__name__.split(".")[0]
        version = getattr(__import__(root), "__version__", "")
        digest.update(f"{value.__name__}=={version}".encode())
    elif isinstance(value, (types.FunctionType, type, types.MethodType)):
        seen.add(id(value))
        if _feed_code(digest, value):
            for name, referenced in sorted(_globals_read(value).items()):
                digest.update(f"{name}=".encode())
                _feed(digest, referenced, depth + 1, seen)
    elif _is_numpy_array(value):
        _feed_array(digest, value)
    elif _is_pandas(value):
        _feed_pandas(digest, value)
    else:
        try:
            digest.update(pickle.dumps(value, protocol=4))
        except Exception as error:
            raise Unfingerprintable(str(error)) from None


def _feed_code(digest: Any, value: Any) -> bool:
    """Hash a function's or class's code; True when it is notebook code (not importable)."""
    module = getattr(value, "__module__", None) or ""
    if module and module != "__main__" and not module.startswith("__"):
        # Importable: its identity and library version are what matter.
        root = module.split(".")[0]
        version = getattr(__import__(root), "__version__", "") if root else ""
        digest.update(f"{module}.{value.__qualname__}=={version}".encode())
        return False
    try:
        digest.update(normalised_source(textwrap.dedent(inspect.getsource(value))).encode())
    except (OSError, TypeError):
        code = getattr(value, "__code__", None)
        if code is None:
            raise Unfingerprintable("its source is not available") from None
        digest.update(code.co_code + repr(code.co_consts).encode())
    return True


def _globals_read(value: Any) -> dict[str, Any]:
    """The notebook globals a function (or a class's methods) reads, so that
    editing a constant a helper uses changes the helper's fingerprint too."""
    functions = (
        [value]
        if not isinstance(value, type)
        else [member for member in vars(value).values() if isinstance(member, types.FunctionType)]
    )
    found: dict[str, Any] = {}
    for function in functions:
        function = getattr(function, "__func__", function)
        namespace = getattr(function, "__globals__", {})
        codes = [function.__code__]
        while codes:
            code = codes.pop()
            codes.extend(const for const in code.co_consts if isinstance(const, types.CodeType))
            for name in code.co_names:
                if name in namespace and not isinstance(namespace[name], types.ModuleType):
                    found[name] = namespace[name]
    return found


def _is_numpy_array(value: Any) -> bool:
    return type(value).__module__ == "numpy" and type(value).__name__ == "ndarray"


def _feed_array(digest: Any, array: Any) -> None:
    import numpy as np

    if array.dtype.hasobject:
        raise Unfingerprintable("it is an array of Python objects")
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    digest.update(np.ascontiguousarray(array).tobytes())


def _is_pandas(value: Any) -> bool:
    return type(value).__module__.startswith("pandas.") and type(value).__name__ in (
        "DataFrame",
        "Series",
        "Index",
    )


def _feed_pandas(digest: Any, value: Any) -> None:
    import pandas as pd

    columns = getattr(value, "columns", None)
    if columns is not None:
        digest.update(repr(list(columns)).encode() + repr(list(value.dtypes.astype(str))).encode())
    try:
        hashed = pd.util.hash_pandas_object(value, index=True).to_numpy()
    except TypeError as error:
        raise Unfingerprintable(f"pandas cannot hash it ({error})") from None
    digest.update(hashed.tobytes())
