"""``ClamdScanner``: send a file to ``clamd`` with INSTREAM and read its verdict.

The protocol: ``zINSTREAM\\0``, then chunks of (4-byte big-endian length, bytes), then a
zero length; ``clamd`` answers ``stream: OK``, ``stream: <signature> FOUND`` or
``<reason> ERROR`` (for instance ``INSTREAM size limit exceeded``), ended by a NUL byte.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

CHUNK = 64 * 1024


@dataclass(frozen=True)
class ScanResult:
    infected: bool
    signature: str = ""  # what clamd found, e.g. "Eicar-Signature" ("" when clean)


class ScannerError(RuntimeError):
    """clamd could not be reached or could not scan the file: try again later."""


class ClamdScanner:
    def __init__(self, host: str, port: int, *, timeout: float = 30.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout

    def _connect(self) -> socket.socket:
        try:
            return socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as error:
            raise ScannerError(f"clamd at {self.host}:{self.port}: {error}") from error

    def ping(self) -> bool:
        try:
            with self._connect() as conn:
                conn.sendall(b"zPING\0")
                return _read_reply(conn) == "PONG"
        except (ScannerError, OSError):
            return False

    def scan(self, data: bytes) -> ScanResult:
        with self._connect() as conn:
            try:
                conn.sendall(b"zINSTREAM\0")
                for at in range(0, len(data), CHUNK):
                    chunk = data[at : at + CHUNK]
                    conn.sendall(struct.pack(">I", len(chunk)) + chunk)
                conn.sendall(struct.pack(">I", 0))
                reply = _read_reply(conn)
            except OSError as error:
                raise ScannerError(f"clamd at {self.host}:{self.port}: {error}") from error
        return parse_reply(reply)


def parse_reply(reply: str) -> ScanResult:
    if reply.endswith("ERROR"):
        raise ScannerError(f"clamd could not scan the file: {reply}")
    _, _, verdict = reply.partition(": ")
    if verdict == "OK":
        return ScanResult(infected=False)
    if verdict.endswith(" FOUND"):
        return ScanResult(infected=True, signature=verdict.removesuffix(" FOUND"))
    raise ScannerError(f"clamd answered {reply!r}")


def _read_reply(conn: socket.socket) -> str:
    buf = bytearray()
    while not buf.endswith(b"\0"):
        part = conn.recv(4096)
        if not part:
            break
        buf += part
    return buf.rstrip(b"\0").decode("utf-8", "replace").strip()
