"""Content fingerprints of notebook values (the cache key of %%labtask cells)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labnb.magics.fingerprint import Unfingerprintable, fingerprint


def test_arrays_by_content_dtype_and_shape():
    a = np.arange(12.0)
    assert fingerprint(a) == fingerprint(np.arange(12.0))
    assert fingerprint(a) != fingerprint(np.arange(12.0) + 1e-9)
    assert fingerprint(a) != fingerprint(a.reshape(3, 4))
    assert fingerprint(a) != fingerprint(a.astype(np.float32))
    assert fingerprint(a[::2]) == fingerprint(np.ascontiguousarray(a[::2]))
    with pytest.raises(Unfingerprintable, match="Python objects"):
        fingerprint(np.array([object()]))


def test_dataframes_by_content_columns_and_index():
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert fingerprint(frame) == fingerprint(frame.copy())
    assert fingerprint(frame) != fingerprint(frame.assign(a=[1, 3]))
    assert fingerprint(frame) != fingerprint(frame.rename(columns={"b": "c"}))
    assert fingerprint(frame) != fingerprint(frame.set_axis([5, 6]))
    assert fingerprint(frame["a"]) != fingerprint(frame["a"] * 2)


def test_plain_values_and_containers():
    assert fingerprint({"b": 1, "a": [1, 2.0]}) == fingerprint({"a": [1, 2.0], "b": 1})
    assert fingerprint(1) != fingerprint(1.0) != fingerprint(True)
    assert fingerprint((1, 2)) != fingerprint([1, 2])


def test_modules_and_importable_code_by_name_and_version():
    assert fingerprint(np) == fingerprint(np)
    assert fingerprint(pd.DataFrame) != fingerprint(pd.Series)


def test_values_without_a_stable_hash_are_refused():
    class Holder:
        pass

    holder = Holder()
    holder.callback = lambda: 1
    with pytest.raises(Unfingerprintable):
        fingerprint(holder)
