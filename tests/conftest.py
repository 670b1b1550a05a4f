from __future__ import annotations

import pytest

import labnb

RUNNERS = ["process", "thread", "serial"]


@pytest.fixture(params=RUNNERS)
def runner(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_lab(tmp_path, runner):
    """A Lab on a fresh storage in tmp_path, for each runner."""

    def make(**options) -> labnb.Lab:
        options.setdefault("storage", tmp_path / "storage")
        options.setdefault("runner", runner)
        options.setdefault("max_workers", 2)
        return labnb.Lab(**options)

    return make
