"""The notebook layer: a ``%%labtask`` cell as a task type (``cells``), content
fingerprints of what it reads (``fingerprint``), and the IPython magics
(``ipython``: ``%%labtask`` and ``%labnb``)."""

from .ipython import load_ipython_extension, unload_ipython_extension

__all__ = ["load_ipython_extension", "unload_ipython_extension"]
