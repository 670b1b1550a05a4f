from __future__ import annotations

import json
import sys

import pytest
from ipykernel.kernelspec import write_kernel_spec
from jupyter_client.kernelspec import KernelSpecManager

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


@pytest.fixture(scope="session")
def kernel_spec_manager(tmp_path_factory: pytest.TempPathFactory) -> KernelSpecManager:
    """Only one kernel, ``python3``, and it is this interpreter (the venv's python)."""
    kernels = tmp_path_factory.mktemp("kernels")
    write_kernel_spec(str(kernels / "python3"))
    argv = json.loads((kernels / "python3" / "kernel.json").read_text())["argv"]
    assert argv[0] == sys.executable
    return KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)
