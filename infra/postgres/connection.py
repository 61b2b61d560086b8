"""The one PostgreSQL connection, from ``DATABASE_URL`` to Django's ``DATABASES`` entry and from
that entry to a libpq connection string, so Django, the event source and the message lane's
sessions connect the same way (TLS and every other libpq option included).

``DATABASE_URL`` is parsed by ``dj-database-url``: its query options (``?sslmode=require``,
``?connect_timeout=5``, ``?options=...``) land in ``OPTIONS``. The socket form the embedded
server hands out, ``postgresql://user@/name?host=/path/to/socket/dir``, names its host in the
query: it is moved to ``HOST``, where the event store's settings read it.
"""

from __future__ import annotations

from typing import Any

import dj_database_url
import psycopg

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/deskstream"
ENGINE = "infra.postgres.backend"

# Every connection parameter libpq knows; other ``OPTIONS`` keys are Django's own ("pool",
# "isolation_level", "assume_role", "server_side_binding", ...).
LIBPQ_KEYWORDS = frozenset(d.keyword.decode() for d in psycopg.pq.Conninfo.get_defaults())


def database_from_url(url: str) -> dict[str, Any]:
    """Django's ``DATABASES`` entry for ``url`` (``ENGINE`` is ``infra.postgres.backend``).
    A URL without a user, host or port means ``postgres`` on 127.0.0.1:5432, as before."""
    scheme = url.partition(":")[0]
    if scheme not in {"postgres", "postgresql"}:
        raise ValueError(f"DATABASE_URL must be a postgresql:// URL, not {scheme!r}")
    database: dict[str, Any] = dict(dj_database_url.parse(url, engine=ENGINE, conn_max_age=0))
    options: dict[str, Any] = {k: str(v) for k, v in database.get("OPTIONS", {}).items()}
    database["HOST"] = options.pop("host", None) or database["HOST"] or "127.0.0.1"
    database["PORT"] = str(options.pop("port", None) or database["PORT"] or "5432")
    database["NAME"] = database["NAME"] or "deskstream"
    database["USER"] = database["USER"] or "postgres"
    database["PASSWORD"] = database["PASSWORD"] or ""
    database["OPTIONS"] = options
    return database


def libpq_options(database: dict[str, Any]) -> dict[str, str]:
    """The libpq parameters among a ``DATABASES`` entry's ``OPTIONS`` (``sslmode``,
    ``options``, ...), without Django's own keys."""
    options = database.get("OPTIONS", {})
    return {key: str(value) for key, value in options.items() if key in LIBPQ_KEYWORDS}
