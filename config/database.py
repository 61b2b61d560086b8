"""Database configuration from one URL, shared by Django and the event store.

``DATABASE_URL`` is ``postgresql://user:password@host:port/name`` or the socket form
``postgresql://user@/name?host=/path/to/socket/dir`` that the embedded server hands out.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/deskstream"


def parse_database_url(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise ValueError(f"DATABASE_URL must be a postgresql:// URL, not {parts.scheme!r}")
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "127.0.0.1"])[0]
    return {
        "ENGINE": "infra.postgres.backend",
        "NAME": unquote(parts.path.lstrip("/")) or "deskstream",
        "USER": unquote(parts.username or "postgres"),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": host,
        "PORT": str(parts.port or query.get("port", ["5432"])[0]),
    }
