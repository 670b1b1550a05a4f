"""``scripts/tutorial``, the README's main command, from a fresh clone, as CI runs
it (as root there): it must start JupyterLab, which refuses root without
``--allow-root``.

The clone reuses the venv this test runs in (``.venv`` links to its entries,
beside the install stamp ``scripts/_venv.sh`` writes): installing JupyterLab and the
examples' packages anew takes minutes, and ``scripts/test`` already runs that
same ``ensure_venv`` in CI's fresh clone. Not run as a non-root user: the
interpreter and venv of this machine sit under root's home.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).parent.parent
START_SECONDS = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.loads(response.read())
    except OSError:
        return None


def test_the_tutorial_command_starts_jupyterlab_from_a_fresh_clone(tmp_path):
    clone = tmp_path / "labnb"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    venv = clone / ".venv"  # this venv, entry by entry: its install stamp is the clone's own
    venv.mkdir()
    for entry in Path(sys.prefix).iterdir():
        if not entry.name.startswith(".labnb-"):
            (venv / entry.name).symlink_to(entry)
    stamp = hashlib.sha256((clone / "pyproject.toml").read_bytes()).hexdigest()
    (venv / ".labnb-examples-installed").write_text(stamp + "\n")
    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    environment = {**os.environ, "HOME": str(home), "JUPYTER_RUNTIME_DIR": str(home / "rt")}
    environment.pop("VIRTUAL_ENV", None)
    log = (tmp_path / "jupyter.log").open("wb")
    server = subprocess.Popen(
        ["scripts/tutorial", "--no-browser", f"--port={port}", "--ServerApp.token="],
        cwd=clone,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        status = None
        deadline = time.monotonic() + START_SECONDS
        while status is None and server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
            status = answers(f"http://127.0.0.1:{port}/api/status")
        output = (tmp_path / "jupyter.log").read_text(errors="replace")
        assert status is not None, f"JupyterLab did not answer (exit {server.poll()}):\n{output}"
        assert "started" in status
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab", timeout=5) as page:
            assert page.status == 200
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
