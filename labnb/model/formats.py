"""Result formats, and ``Payload``: a result that is decoded and encoded only when needed.

Results travel between processes and to disk as bytes. A ``Payload`` holds
either the value, the bytes, or both, and converts lazily: a cached
dependency's bytes go from the result file to the worker that needs them
without being unpickled in between.
"""

from __future__ import annotations

import io
import pickle
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import cloudpickle

_UNSET = object()


class ResultFormat(ABC):
    """How a task type's results are written to bytes (``@task(cache=...)``)."""

    name: str
    suffix: str

    @abstractmethod
    def dumps(self, value: Any) -> bytes: ...

    @abstractmethod
    def loads(self, data: bytes) -> Any: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


class PickleFormat(ResultFormat):
    """Any Python object; cloudpickle so that notebook-defined classes and lambdas work."""

    name = "pickle"
    suffix = ".pkl"

    def dumps(self, value: Any) -> bytes:
        return cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)


class NumpyFormat(ResultFormat):
    """NumPy arrays as ``.npy`` files: readable by any NumPy, no code execution on load."""

    name = "npy"
    suffix = ".npy"

    def dumps(self, value: Any) -> bytes:
        import numpy as np

        if not isinstance(value, np.ndarray):
            raise TypeError(f"NumpyFormat stores numpy arrays, not {type(value).__name__}")
        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        return buffer.getvalue()

    def loads(self, data: bytes) -> Any:
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)


class ParquetFormat(ResultFormat):
    """pandas DataFrames as Parquet files (needs pyarrow or fastparquet)."""

    name = "parquet"
    suffix = ".parquet"

    def dumps(self, value: Any) -> bytes:
        import pandas as pd

        if not isinstance(value, pd.DataFrame):
            raise TypeError(f"ParquetFormat stores pandas DataFrames, not {type(value).__name__}")
        buffer = io.BytesIO()
        value.to_parquet(buffer)
        return buffer.getvalue()

    def loads(self, data: bytes) -> Any:
        import pandas as pd

        return pd.read_parquet(io.BytesIO(data))


class Payload:
    """A result as a value, as bytes in ``format``, or both; each side is made on demand."""

    __slots__ = ("_data", "_read", "_value", "format")

    def __init__(
        self,
        fmt: ResultFormat,
        *,
        value: Any = _UNSET,
        data: Any = _UNSET,
        read: Callable[[], bytes] | None = None,
    ) -> None:
        """``read``, instead of ``data``: where to get the bytes when first needed
        (a result file that may never be looked at)."""
        self.format = fmt
        self._value = value
        self._data = data
        self._read = read

    @property
    def value(self) -> Any:
        if self._value is _UNSET:
            self._value = self.format.loads(self.data)
        return self._value

    @property
    def data(self) -> bytes:
        if self._data is _UNSET:
            if self._read is not None:
                self._data, self._read = self._read(), None
            else:
                self._data = self.format.dumps(self._value)
        return self._data

    def __reduce__(self) -> tuple[Any, ...]:
        return (_payload_from_data, (self.format, self.data))


def _payload_from_data(fmt: ResultFormat, data: bytes) -> Payload:
    return Payload(fmt, data=data)
