"""Tests that need a tool from outside Python (a browser, Node) skip on a
developer's machine without it, but fail on CI, where a missing tool must never
silently turn into a green run."""

from __future__ import annotations

import os

import pytest


def unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"cannot run on CI: {reason}", pytrace=False)
    pytest.skip(reason)
