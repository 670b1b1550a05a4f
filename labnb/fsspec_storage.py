"""``from labnb.fsspec_storage import FsspecStorage``, as documented by 0.1.0."""

from .storage.store import FsspecStorage

__all__ = ["FsspecStorage"]
