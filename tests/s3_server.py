"""A real S3-compatible server on 127.0.0.1 for the tests: moto in server mode.

Storage options, not environment variables, carry the endpoint and the dummy
credentials: they travel inside ``FsspecStorage``'s payload writer to worker
processes and Ray workers, which is what a user's options must do too.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def moto_s3() -> Iterator[dict[str, Any]]:
    """Start moto's S3 server on a free port; yield s3fs storage options for it."""
    server_module = pytest.importorskip("moto.server", reason="needs moto[server]")
    pytest.importorskip("s3fs")
    port = free_port()
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield {
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {
                "endpoint_url": f"http://127.0.0.1:{port}",
            },
        }
    finally:
        server.stop()
