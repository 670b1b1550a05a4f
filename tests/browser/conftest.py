"""Fixtures for tests that drive JupyterLab in headless Chromium.

- ``jupyter_server`` (session): one isolated JupyterLab for the whole run.
- ``browser`` (session): Debian's Chromium through Playwright.
- ``notebook`` (function): ``notebook(["cell 1", "cell 2"])`` writes a fresh
  notebook, opens it in a new page and returns a :class:`jupyter.Notebook`.
  Its kernel and session are shut down after the test; a screenshot and the
  cells' outputs are saved/printed when the test fails.

Without Chromium or Playwright these tests are skipped, except under ``CI=true``
where they fail.
"""

from __future__ import annotations

import importlib.util
import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from jlab import CHROMIUM, CHROMIUM_ARGS, JupyterServer, Notebook, start_server, write_notebook
from requirements import unavailable

HERE = Path(__file__).parent
SCREENSHOTS = HERE / "screenshots"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: takes minutes (e.g. builds a fresh virtual environment)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    # Keep each phase's report on the item so fixtures can tell a failed test.
    report = yield
    setattr(item, f"_browser_rep_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def jupyter_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """A JupyterLab on 127.0.0.1:<free port> with a random token and isolated
    config/runtime/workspaces/settings dirs; its root dir is ``.root_dir``."""
    if importlib.util.find_spec("jupyterlab") is None:
        unavailable("jupyterlab is not installed")
    server = start_server(tmp_path_factory.mktemp("jupyter"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium (a ``playwright.sync_api.Browser``)."""
    if importlib.util.find_spec("playwright") is None:
        unavailable("playwright is not installed (pip install playwright)")
    if not os.access(CHROMIUM, os.X_OK):
        unavailable(f"{CHROMIUM} not found (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def notebook(
    request: pytest.FixtureRequest, browser, jupyter_server: JupyterServer
) -> Iterator[Callable[..., Notebook]]:
    """Factory: ``notebook(cells, open=True) -> Notebook``.

    Writes the code cells to a uniquely named notebook in the server's root,
    opens it in a new page (its own browser context) and waits for the kernel
    to be idle. Can be called more than once per test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    prefix = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    opened: list[Notebook] = []

    def make(cells: list[str], open: bool = True) -> Notebook:
        name = f"{prefix[:60]}-{uuid.uuid4().hex[:8]}.ipynb"
        write_notebook(jupyter_server.root_dir / name, cells)
        nb = Notebook(jupyter_server, context, name, SCREENSHOTS, prefix)
        opened.append(nb)
        if open:
            nb.open()
        return nb

    try:
        yield make
    finally:
        reports = (getattr(request.node, f"_browser_rep_{w}", None) for w in ("setup", "call"))
        failed = any(r is not None and r.failed for r in reports)
        errors = []
        for i, nb in enumerate(opened):
            if failed:
                _dump(nb, f"failure{i}" if len(opened) > 1 else "failure")
            try:
                nb.close()
            except Exception as e:
                errors.append(e)
        context.close()
        if failed:
            print(f"--- JupyterLab log (tail)\n{jupyter_server.log_tail()}")
        if errors:
            raise errors[0]


def _dump(nb: Notebook, name: str) -> None:
    """Screenshot plus cells, outputs and browser console, for a failed test."""
    try:
        print(f"--- screenshot: {nb.screenshot(name)}")
    except Exception as e:
        print(f"--- screenshot failed: {e}")
    print(f"--- notebook {nb.name}\n{nb.describe()}")
    if nb.console:
        print("--- browser console\n" + "\n".join(nb.console[-50:]))
