"""labtech's caches by labtech's names (``from labnb.cache import BaseCache``)."""

from .errors import CacheError, TaskNotFound
from .model.caches import BaseCache, NullCache, PickleCache
from .model.tasks import ResultMeta

__all__ = ["BaseCache", "CacheError", "NullCache", "PickleCache", "ResultMeta", "TaskNotFound"]
