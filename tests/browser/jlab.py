"""Drive a throw-away JupyterLab server and its notebooks from Playwright.

Used by the fixtures in ``conftest.py``; see /work/shared/notes/browser-testing.md
for why things are done this way (isolated settings, one kernel per notebook,
sessions deleted on teardown).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Locator, Page

# Debian's Chromium (never `playwright install`); LABNB_CHROMIUM overrides.
CHROMIUM = os.environ.get("LABNB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

KERNEL_IDLE = ".jp-Notebook-ExecutionIndicator[data-status='idle']"
CELL = ".jp-Notebook .jp-Cell"
PROMPT = ".jp-InputArea-prompt"
# Status bar item "Python 3 (ipykernel) | Idle"
KERNEL_STATUS = "#jp-main-statusbar .jp-StatusBar-TextItem[title^='Change kernel']"
OUTPUT = ".jp-Cell-outputArea"
READ_MS = 2000  # timeout for reading an element that should already be there


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- server


@dataclass
class JupyterServer:
    """A running JupyterLab, isolated in ``base_dir``; notebooks live in ``root_dir``.

    ``python`` is the interpreter of the environment JupyterLab (and so its
    native ``python3`` kernel) runs in; None means the one running the tests."""

    base_dir: Path
    port: int
    token: str
    process: subprocess.Popen | None = None
    python: str | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.base_dir / "jupyter.log"

    @property
    def root_dir(self) -> Path:
        return self.base_dir / "root"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str, **params: str) -> str:
        """``/lab/tree/x.ipynb`` -> full URL carrying the token (plus ``params``)."""
        query = urllib.parse.urlencode({"token": self.token, **params})
        return f"{self.base_url}/{path.lstrip('/')}?{query}"

    def api(self, method: str, path: str, body: Any = None, timeout: float = 10) -> Any:
        """Call the REST API (``path`` like ``/api/sessions``); returns decoded JSON or None."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's log (kernels log there too), long lines cut."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        cut = [line if len(line) <= 300 else line[:300] + " [...]" for line in lines]
        return "\n".join(cut)[-chars:]

    # -- lifecycle

    def start(self, timeout: float = 60) -> None:
        for sub in ("root", "config", "runtime", "workspaces", "settings", "data", "ipython"):
            (self.base_dir / sub).mkdir(parents=True, exist_ok=True)
        # Answer "No" to the "get notified about Jupyter news?" toast up front, as
        # a user would; it would cover the bottom right of the page. All other
        # settings (commsOverSubshells included) keep JupyterLab's defaults.
        news = self.base_dir / "settings/@jupyterlab/apputils-extension"
        news.mkdir(parents=True, exist_ok=True)
        (news / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
        # No "build recommended" check: it runs node on every page load (seconds
        # on 2 cores) and the prebuilt app never needs a build here.
        labconfig = self.base_dir / "config/labconfig"
        labconfig.mkdir(parents=True, exist_ok=True)
        (labconfig / "page_config.json").write_text(
            '{"buildCheck": false, "buildAvailable": false}'
        )
        env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(self.base_dir / "config"),
            "JUPYTER_RUNTIME_DIR": str(self.base_dir / "runtime"),
            "JUPYTERLAB_WORKSPACES_DIR": str(self.base_dir / "workspaces"),
            "JUPYTERLAB_SETTINGS_DIR": str(self.base_dir / "settings"),
            # Keep a user's ~/.local/share/jupyter kernelspecs and IPython
            # startup files out; the venv's own share/jupyter is still used.
            "JUPYTER_DATA_DIR": str(self.base_dir / "data"),
            "IPYTHONDIR": str(self.base_dir / "ipython"),
            "PYTHONUNBUFFERED": "1",
        }
        if self.python is not None:
            # Another environment: its bin/ first on PATH (as if activated; do
            # not resolve the symlink, that would leave the venv), and nothing
            # of the test runner's environment leaking into it.
            bin_dir = os.path.dirname(os.path.abspath(self.python))
            env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
            env["VIRTUAL_ENV"] = os.path.dirname(bin_dir)
            env.pop("PYTHONPATH", None)
            env.pop("PYTHONHOME", None)
        cmd = [
            self.python or sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            f"--LabApp.user_settings_dir={self.base_dir / 'settings'}",
            f"--LabApp.workspaces_dir={self.base_dir / 'workspaces'}",
            "--LabApp.extension_manager=readonly",
        ]
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the server
        self.process = subprocess.Popen(
            cmd,
            cwd=self.base_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()  # the child has its own copy
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"JupyterLab exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                self.api("GET", "/api/status", timeout=2)
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"JupyterLab not ready after {timeout} s:\n{self.log_tail()}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # Shut kernels down through the server first so none is left orphaned.
        try:
            for session in self.api("GET", "/api/sessions", timeout=5):
                self.api("DELETE", f"/api/sessions/{session['id']}", timeout=10)
        except Exception:
            pass
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    # -- sessions

    def sessions_for(self, nb_path: str) -> list[dict]:
        return [s for s in self.api("GET", "/api/sessions") if s.get("path") == nb_path]

    def delete_sessions_for(self, nb_path: str) -> None:
        """Shut down the notebook's session(s) and their kernels so nothing is reused."""
        for session in self.sessions_for(nb_path):
            try:
                # Deleting a session also shuts its kernel down.
                self.api("DELETE", f"/api/sessions/{session['id']}", timeout=30)
            except urllib.error.HTTPError as e:
                if e.code != 404:
                    raise
        kernel_ids = {(s.get("kernel") or {}).get("id") for s in self.sessions_for(nb_path)}
        for kernel in self.api("GET", "/api/kernels"):
            if kernel["id"] in kernel_ids:
                self.api("DELETE", f"/api/kernels/{kernel['id']}", timeout=30)


def start_server(
    base_dir: Path, attempts: int = 3, python: str | None = None, timeout: float = 60
) -> JupyterServer:
    """Start JupyterLab on a free port with a random token (retrying on a port race).

    ``python``: run the JupyterLab of that interpreter's environment instead of
    the test runner's own (see :class:`JupyterServer`)."""
    error: Exception | None = None
    for attempt in range(attempts):
        server = JupyterServer(
            base_dir=base_dir / f"server{attempt}",
            port=free_port(),
            token=secrets.token_hex(16),
            python=python,
        )
        try:
            server.start(timeout=timeout)
            return server
        except RuntimeError as e:
            error = e
    raise RuntimeError(f"could not start JupyterLab in {attempts} attempts") from error


# --------------------------------------------------------------------------- notebook


def write_notebook(path: Path, cells: list[str]) -> None:
    """Write a v4 notebook of code cells with the venv's ``python3`` kernelspec."""
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {
                "name": "python3",
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
            },
            "language_info": {"name": "python"},
        },
        "cells": [
            {
                "id": uuid.uuid4().hex[:8],
                "cell_type": "code",
                "execution_count": None,
                "metadata": {},
                "outputs": [],
                "source": source,
            }
            for source in cells
        ],
    }
    path.write_text(json.dumps(nb, indent=1))


class Notebook:
    """One notebook open in its own browser page, with its own fresh kernel.

    Cell indices count all cells in the notebook, from 0. Timeouts are in seconds.
    """

    def __init__(
        self,
        server: JupyterServer,
        context: BrowserContext,
        name: str,
        screenshot_dir: Path,
        screenshot_prefix: str,
    ) -> None:
        self.server = server
        self.context = context
        self.name = name
        self.path = server.root_dir / name
        self.screenshot_dir = screenshot_dir
        self.screenshot_prefix = screenshot_prefix
        self.console: list[str] = []
        self.page: Page = context.new_page()
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))

    # -- opening

    @property
    def url(self) -> str:
        return self.server.url(f"/lab/tree/{urllib.parse.quote(self.name)}", reset="")

    def open(self, timeout: float = 60) -> Notebook:
        self.page.goto(self.url)
        self.wait_for_kernel_idle(timeout)
        return self

    def reload(self, save: bool = True, wait_idle: bool = True, timeout: float = 60) -> None:
        """Reload the browser page, as a user pressing F5 would.

        The kernel keeps running (same session) and widgets re-render from it.
        The page shows the notebook as saved on disk, so by default it is saved
        first (``save=False`` to reload onto the last saved version). With
        ``wait_idle=False`` it only waits for the kernel to be connected (for a
        reload while a cell is still running)."""
        if save:
            self.save()
        self.page.reload()
        if wait_idle:
            self.wait_for_kernel_idle(timeout)
        else:
            self.wait_for_kernel_connected(timeout)

    def save(self, timeout: float = 10) -> None:
        """Save the notebook (Ctrl+S) and wait until its tab is no longer dirty."""
        before = self.path.stat().st_mtime_ns
        self.page.keyboard.press("Escape")
        self.page.keyboard.press("ControlOrMeta+s")
        dirty = self.page.locator(".lm-TabBar-tab.jp-mod-current.jp-mod-dirty")
        self._poll(
            lambda: dirty.count() == 0 and self.path.stat().st_mtime_ns != before,
            timeout,
            "notebook not saved",
        )

    def wait_for_kernel_idle(self, timeout: float = 60) -> None:
        """Wait until the page is connected to the kernel and the kernel is idle.

        The toolbar's execution indicator alone is not enough: in a notebook of
        several cells it reads "idle" for a moment while the kernel is still
        starting, and a Run All clicked then is lost. The status bar's
        "<kernel> | Idle" only appears once the kernel is connected."""

        def ready() -> bool:
            return self.kernel_status() == "Idle" and self.page.locator(KERNEL_IDLE).count() > 0

        self._poll(ready, timeout, lambda: f"kernel not idle after {timeout} s")

    def wait_for_kernel_connected(self, timeout: float = 60) -> None:
        """Wait until the page is connected to the kernel, idle or busy."""
        self._poll(
            lambda: self.kernel_status() in ("Idle", "Busy"),
            timeout,
            lambda: f"kernel not connected after {timeout} s",
        )

    def kernel_status(self) -> str:
        """The kernel status the status bar shows: Initializing, Connecting, Idle, Busy..."""
        text = self.page.locator(KERNEL_STATUS).first.inner_text(timeout=READ_MS)
        return text.rpartition("|")[2].strip()

    # -- cells

    def cells(self) -> Locator:
        return self.page.locator(CELL)

    def cell(self, index: int) -> Locator:
        return self.cells().nth(index)

    def cell_count(self) -> int:
        return self.cells().count()

    def cell_source(self, index: int) -> str:
        """The text in cell ``index``'s editor (as rendered by CodeMirror)."""
        return (
            self.cell(index)
            .locator(".cm-content")
            .first.evaluate(
                "el => Array.from(el.querySelectorAll('.cm-line'), l => l.textContent).join('\\n')",
                timeout=READ_MS,
            )
        )

    def cell_output_text(self, index: int) -> str:
        """The visible text of a cell's outputs ('' when it has none)."""
        area = self.cell(index).locator(OUTPUT).first
        return area.inner_text(timeout=READ_MS) if area.count() else ""

    def output_texts(self) -> list[str]:
        return [self.cell_output_text(i) for i in range(self.cell_count())]

    def wait_for_output_text(self, index: int, text: str, timeout: float = 10) -> None:
        """Wait until cell ``index``'s output contains ``text``. On timeout fail with
        every cell's output: a widget's traceback shows up there, not as an error."""
        self._poll(
            lambda: text in self.cell_output_text(index),
            timeout,
            lambda: f"{text!r} not in output of cell {index} after {timeout} s",
        )

    def describe(self) -> str:
        """All cells' sources, prompts and outputs, for failure messages."""
        parts = []
        try:
            for i in range(self.cell_count()):
                prompt = self._prompt(i)
                parts.append(
                    f"--- cell {i} {prompt}\n{self.cell_source(i)}\n"
                    f"--- output {i}:\n{self.cell_output_text(i)}"
                )
        except Exception as e:
            parts.append(f"(could not read cells: {e})")
        return "\n".join(parts)

    # -- running

    def _prompt(self, index: int) -> str:
        return self.cell(index).locator(PROMPT).first.inner_text(timeout=READ_MS).strip()

    def select_cell(self, index: int) -> None:
        """Make cell ``index`` the active cell, in command mode."""
        cell = self.cell(index)
        cell.scroll_into_view_if_needed()
        cell.locator(PROMPT).first.click()
        self.page.keyboard.press("Escape")
        self.page.locator(f"{CELL}.jp-mod-active").first.wait_for(timeout=5000)
        self._poll(
            lambda: "jp-mod-active" in (cell.get_attribute("class") or ""),
            5,
            f"cell {index} did not become active",
        )

    def run_all(self, wait: bool = True, timeout: float = 60) -> None:
        """Run -> Run All Cells through the menu bar; with ``wait``, until all have run."""
        before = self._prompt(0)
        self.page.get_by_role("menuitem", name="Run", exact=True).click()
        self.page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
        if wait:
            # JupyterLab queues every cell ("[*]:") at once, so once the first
            # cell's prompt has changed, "no [*] left" means the run is over.
            self._poll(lambda: self._prompt(0) != before, timeout, "Run All did not start")
            self.wait_until_done(timeout)

    def run_cell(self, index: int, wait: bool = True, timeout: float = 60) -> None:
        """Select cell ``index`` and run it with Ctrl+Enter (the selection stays on it)."""
        before = self._prompt(index)
        self.select_cell(index)
        self.page.keyboard.press("Control+Enter")
        if wait:
            self.wait_for_cell(index, timeout, previous_prompt=before)

    def append_cell(self, source: str) -> int:
        """Add a code cell at the end holding ``source``; returns its index."""
        count = self.cell_count()
        self.select_cell(count - 1)
        self.page.keyboard.press("b")  # insert a cell below, in command mode
        self._poll(lambda: self.cell_count() == count + 1, 5, "no cell was added")
        self.set_cell_source(count, source)
        return count

    def set_cell_source(self, index: int, source: str) -> None:
        """Replace cell ``index``'s text the way pasting it would.

        ``insert_text`` arrives as one input event, so CodeMirror neither
        auto-indents new lines nor auto-closes brackets."""
        self.cell(index).locator(".cm-content").click()
        self.page.keyboard.press("ControlOrMeta+a")
        self.page.keyboard.press("Delete")
        self.page.keyboard.insert_text(source)
        self._poll(
            lambda: self.cell_source(index) == source,
            5,
            lambda: f"cell {index} holds {self.cell_source(index)!r}, not {source!r}",
        )
        self.page.keyboard.press("Escape")  # back to command mode

    def append_and_run(self, source: str, wait: bool = True, timeout: float = 60) -> int:
        """Append a cell with ``source`` and run it; returns its index."""
        index = self.append_cell(source)
        self.run_cell(index, wait=wait, timeout=timeout)
        return index

    # -- waiting

    def wait_for_cell(self, index: int, timeout: float = 60, previous_prompt: str = "") -> None:
        """Wait until cell ``index`` shows an execution count (``[n]:``) other than
        ``previous_prompt``, i.e. it has run (again)."""

        def done() -> bool:
            prompt = self._prompt(index)
            return prompt != previous_prompt and re.fullmatch(r"\[\d+\]:?", prompt) is not None

        self._poll(done, timeout, lambda: f"cell {index} not done after {timeout} s")

    def wait_until_done(self, timeout: float = 60) -> None:
        """Wait until no cell shows ``[*]`` and the kernel is idle."""

        def done() -> bool:
            prompts = self.page.locator(f"{CELL} {PROMPT}").all_inner_texts()
            running = any(p.strip().startswith("[*]") for p in prompts)
            return not running and self.page.locator(KERNEL_IDLE).count() > 0

        self._poll(done, timeout, lambda: f"notebook still running after {timeout} s")

    def _poll(self, condition, timeout: float, message) -> None:
        """Poll ``condition`` every 50 ms; on timeout raise AssertionError with
        ``message`` and every cell's source and output."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if condition():
                    return
            except AssertionError:
                raise
            except Exception:  # e.g. an element detached mid-read: try again
                pass
            if time.monotonic() > deadline:
                text = message() if callable(message) else message
                raise AssertionError(f"{text}\n{self.describe()}")
            time.sleep(0.05)

    # -- artefacts and teardown

    def screenshot(self, name: str) -> Path:
        """Save a full-page PNG as ``screenshots/<test>-<name>.png``; returns its path."""
        self.screenshot_dir.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
        path = self.screenshot_dir / f"{self.screenshot_prefix}-{safe}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        """Close the page, then shut down this notebook's session and kernel."""
        try:
            self.page.close()
        finally:
            self.server.delete_sessions_for(self.name)
            left = self.server.sessions_for(self.name)
            if left:
                raise RuntimeError(f"sessions left for {self.name} after shutdown: {left}")
