"""chDB's reads served to this machine's other processes over a Unix socket (ADR 0035).

chDB lets one process own its directory. Under ``make run`` that is the projector process
(``manage.py projector run-all``), which writes analytics beside the other projectors; the
web server reads the dashboard's figures through this socket instead of running chDB in its
own process, where the engine took ~350 MB and its calls took turns with the requests on the
web server's interpreter lock.

The protocol is HTTP/1.1 on a Unix socket that only this machine's user reaches (mode 0600 in
the data directory's parent): ``POST /query`` with one ``SELECT`` as the body, answered
``{"data": [[...], ...]}`` (``JSONCompact``'s rows, as ``ChdbDatabase.query`` gives them) or
``{"error": "..."}`` with 400. The serving connection is read-only (``readonly = 1``), so
nothing but the owner's projector writes.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import logging
import os
import socket
import socketserver
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from infra.clickhouse.embedded import ChdbDatabase
from infra.clickhouse.ports import AnalyticsUnavailableError
from infra.clickhouse.schema import create_statements

log = logging.getLogger(__name__)
MAX_SQL = 1 << 20  # the dashboard's statements are a few kilobytes
TIMEOUT = 60.0  # seconds a client waits for an answer (the slowest dashboard query: < 1 s)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if self.path != "/query" or not 0 < length <= MAX_SQL:
            self._answer(400, {"error": "POST /query with one SELECT as the body"})
            return
        sql = self.rfile.read(length).decode()
        if sql.lstrip()[:6].upper() != "SELECT":
            self._answer(400, {"error": "only SELECT statements are served"})
            return
        try:
            rows = self.server.db.query(sql)
        except Exception as error:  # the engine's message goes back to the caller
            self._answer(400, {"error": str(error)[:2000]})
            return
        self._answer(200, {"data": rows})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = orjson.dumps(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return  # one line per dashboard query would be noise

    def address_string(self) -> str:
        return "analytics socket"  # a Unix socket's peer has no address


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    timeout = 0.5  # handle_request returns this often, so the thread sees its stop

    def __init__(self, path: Path, db: ChdbDatabase) -> None:
        self.db = db
        super().__init__(str(path), _Handler)


def serve(socket_path: Path, data_path: Path, *, database: str = "default") -> _Server:
    """Open chDB in ``data_path`` (this process owns it) read-only and listen on
    ``socket_path`` (a leftover socket file of a process that is gone is replaced)."""
    db = ChdbDatabase(data_path, database=database)
    for statement in create_statements():  # a dashboard before the projector's first batch
        db.command(statement)
    db.command("SET readonly = 1")
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        socket_path.unlink()  # only this directory's owner gets here: the file is stale
    old = os.umask(0o177)
    try:
        server = _Server(socket_path, db)
    finally:
        os.umask(old)
    return server


def serve_thread(
    stop: threading.Event, socket_path: Path, data_path: Path, *, database: str = "default"
) -> threading.Thread:
    """A thread answering the socket until ``stop`` is set; then it removes the socket."""

    def run() -> None:
        with contextlib.suppress(OSError, AttributeError):  # as the analytics projector's
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        server = serve(socket_path, data_path, database=database)
        log.info("analytics reads served on %s", socket_path)
        try:
            while not stop.is_set():
                server.handle_request()
        finally:
            server.server_close()
            with contextlib.suppress(FileNotFoundError):
                socket_path.unlink()
            server.db.close()

    return threading.Thread(target=run, name="analytics-socket", daemon=True)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.unix_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class ChdbSocketDatabase:
    """The analytics port's reads from the process that owns chDB (``serve``). Read-only:
    ``command`` and ``insert`` are refused (the owner creates and writes the tables)."""

    def __init__(self, socket_path: str | Path, *, timeout: float = TIMEOUT) -> None:
        self.path = Path(socket_path)
        self.name = str(self.path)
        self.timeout = timeout

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        conn = _UnixConnection(str(self.path), self.timeout)
        try:
            body = sql.encode()
            conn.request("POST", "/query", body, {"Content-Type": "text/plain"})
            response = conn.getresponse()
            data = orjson.loads(response.read())
        except (OSError, http.client.HTTPException, orjson.JSONDecodeError) as error:
            raise AnalyticsUnavailableError(
                f"the process that owns chDB (make run's projector process) does not answer "
                f"on {self.path}: {error}"
            ) from error
        finally:
            conn.close()
        if response.status != 200:
            raise RuntimeError(f"analytics query refused: {data.get('error')}")
        return [tuple(row) for row in data["data"]]

    def query_all(self, sqls: Sequence[str]) -> list[list[tuple[Any, ...]]]:
        """One after another: the owner's chDB answers one query at a time."""
        return [self.query(sql) for sql in sqls]

    def command(self, sql: str) -> None:
        raise PermissionError("analytics through the socket are read-only")

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        raise PermissionError("analytics through the socket are read-only")

    def close(self) -> None:
        return  # one connection per query, closed after it
