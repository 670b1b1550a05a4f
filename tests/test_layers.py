"""The package's layers keep to their contracts."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "labnb"
TASK_ATTRIBUTE = re.compile(r"_labnb_(?!cell_)\w+")


def test_only_the_model_reads_the_attributes_the_task_decorator_adds():
    readers = {
        f"{path.relative_to(PACKAGE)}: {match}"
        for path in PACKAGE.rglob("*.py")
        if path.parent.name != "model"
        for match in TASK_ATTRIBUTE.findall(path.read_text())
    }
    assert readers == set(), "use labnb.model.tasks' accessors (task_id, meta_of...)"


def test_every_labnb_error_derives_from_labnb_error():
    import labnb
    from labnb.cli import CliError
    from labnb.magics.cells import LineError
    from labnb.magics.fingerprint import Unfingerprintable
    from labnb.storage import CorruptEntry, QueryError

    for error in (
        labnb.TaskFailed, labnb.StorageError, labnb.CycleError, QueryError, CorruptEntry,
        LineError, Unfingerprintable, CliError, labnb.ConfigError,
        labnb.SearchError,
    ):  # fmt: skip
        assert issubclass(error, labnb.LabnbError), error
