"""A local OpenSearch-API server for the tests and benchmarks: osmem-server, an in-memory
Go server implementing the OpenSearch REST API, shipped as a binary in the ``osmem-server``
wheel (a dev dependency). Production uses OpenSearch (docker-compose).

Memory only: everything is gone when the process stops. Standard query DSL only (no
painless); its scores differ from OpenSearch's, so tests assert hits and order.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path


def osmem_binary() -> str | None:
    """The server's path, or None when ``osmem-server`` is not installed."""
    try:
        import osmem_server
    except ImportError:
        return None
    binary = Path(osmem_server.__file__).parent / "bin" / "osmem-server"
    return str(binary) if binary.exists() else None


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_osmem(
    port: int | None = None, timeout: float = 10.0
) -> tuple[str, subprocess.Popen[bytes]] | None:
    """Start a server on ``port`` (default: a free one) of 127.0.0.1; return its URL and
    process once it listens (None without the binary). The caller stops the process."""
    binary = osmem_binary()
    if binary is None:
        return None
    port = port or free_port()
    proc = subprocess.Popen(  # noqa: S603 - the wheel's own binary, fixed arguments
        [binary, "-addr", f"127.0.0.1:{port}", "-no-stdin-watch", "-no-ja"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    while not _listening(port) and time.monotonic() < deadline:
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}", proc
