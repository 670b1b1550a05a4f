"""Result formats, and ``Payload``: a result that is decoded and encoded only when needed.

Results travel between processes and to disk as bytes. A ``Payload`` holds
the value, the bytes, or where they are kept (a ``PayloadSource``: a result
file), and converts lazily. A result a worker wrote to a file travels as a
reference to that file, never as its bytes: the run process does not read it,
and the worker or kernel that needs the value loads it from the file.
"""

from __future__ import annotations

import contextlib
import io
import pickle
from abc import ABC, abstractmethod
from typing import Any, Protocol

import cloudpickle

_UNSET = object()


class Writable(Protocol):
    """Where ``ResultFormat.dump`` writes: an open binary file, or one that hashes as it writes."""

    def write(self, data: Any, /) -> int: ...


class ResultFormat(ABC):
    """How a task type's results are written to bytes (``@task(cache=...)``)."""

    name: str
    suffix: str

    @abstractmethod
    def dumps(self, value: Any) -> bytes: ...

    @abstractmethod
    def loads(self, data: bytes) -> Any: ...

    def dump(self, value: Any, file: Writable) -> None:
        """Write ``value`` to an open file; formats that can stream override this,
        so a big result is never also held as bytes."""
        file.write(self.dumps(value))

    def load_file(self, path: str) -> Any:
        """Read a value from a file written by ``dump``."""
        with open(path, "rb") as file:
            return self.loads(file.read())

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

    def dump(self, value: Any, file: Writable) -> None:
        # Protocol 5 hands big buffers (NumPy arrays) to file.write as they
        # are: the result is written without a copy.
        cloudpickle.dump(value, file, protocol=pickle.HIGHEST_PROTOCOL)

    def load_file(self, path: str) -> Any:
        # pickle.load reads each big buffer straight into the object it becomes.
        with open(path, "rb") as file:
            return pickle.load(file)


class NumpyFormat(ResultFormat):
    """NumPy arrays as ``.npy`` files: readable by any NumPy, no code execution on load."""

    name = "npy"
    suffix = ".npy"

    def dumps(self, value: Any) -> bytes:
        buffer = io.BytesIO()
        self.dump(value, buffer)
        return buffer.getvalue()

    def loads(self, data: bytes) -> Any:
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)

    def dump(self, value: Any, file: Writable) -> None:
        """``numpy.save``, but a contiguous array of numbers goes to ``file.write``
        as one buffer after its header: to anything but a real file numpy
        writes in 16 MiB copies."""
        import numpy as np
        from numpy.lib import format as npy

        if not isinstance(value, np.ndarray):
            raise TypeError(f"NumpyFormat stores numpy arrays, not {type(value).__name__}")
        if value.dtype.kind in "biufc" and (value.flags.c_contiguous or value.flags.f_contiguous):
            header = io.BytesIO()
            with contextlib.suppress(ValueError):  # a header only a later .npy version holds
                npy.write_array_header_1_0(header, npy.header_data_from_array_1_0(value))
                file.write(header.getvalue())
                file.write(value.ravel(order="K").data)
                return
        np.save(file, value, allow_pickle=False)

    def load_file(self, path: str) -> Any:
        """A copy-on-write memory map of the file (``numpy.memmap``): loading costs
        nothing until pages are read, and the array is writable, but writes stay
        in this process; the cached file never changes."""
        import numpy as np

        return np.load(path, mmap_mode="c", allow_pickle=False)


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


class PayloadSource(Protocol):
    """Where a payload is kept (a result file): read only when needed. A payload
    with a source pickles as its source, so the source must pickle small."""

    def read(self) -> bytes: ...

    def load(self, fmt: ResultFormat) -> Any: ...


class Payload:
    """A result as a value, as bytes in ``format``, or both; each side is made on demand."""

    __slots__ = ("_data", "_source", "_value", "format")

    def __init__(
        self,
        fmt: ResultFormat,
        *,
        value: Any = _UNSET,
        data: Any = _UNSET,
        source: PayloadSource | None = None,
    ) -> None:
        """``source``, instead of ``data``: where the payload is kept (a result
        file, which may never be looked at); the value is loaded from it as a
        stream, and it is what crosses process boundaries, not the bytes."""
        self.format = fmt
        self._value = value
        self._data = data
        self._source = source

    @property
    def value(self) -> Any:
        if self._value is _UNSET:
            if self._data is _UNSET and self._source is not None:
                self._value = self._source.load(self.format)
            else:
                self._value = self.format.loads(self.data)
        return self._value

    @property
    def data(self) -> bytes:
        if self._data is _UNSET:
            if self._source is not None:
                self._data = self._source.read()
            else:
                self._data = self.format.dumps(self._value)
        return self._data

    def __reduce__(self) -> tuple[Any, ...]:
        if self._source is not None:
            return (_payload_from_source, (self.format, self._source))
        return (_payload_from_data, (self.format, self.data))


def _payload_from_data(fmt: ResultFormat, data: bytes) -> Payload:
    return Payload(fmt, data=data)


def _payload_from_source(fmt: ResultFormat, source: PayloadSource) -> Payload:
    return Payload(fmt, source=source)
