"""Read-your-writes: ``?after=<position>`` waits (bounded) for a projection to catch up.

A command returns the log position of its last event. A read that passes it waits until
the projection serving the read has applied that position, up to
``READ_AFTER_TIMEOUT`` seconds; past that it answers with what it has and says so in the
``X-Deskstream-Stale: true`` header. Every read answers ``X-Deskstream-Position``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.db import connection
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from infra.postgres.models import ProjectionPosition

POLL_SECONDS = 0.005


# Read on every request of every read view: plain SQL, not an ORM query compiled each time.
_POSITION_SQL = (
    f"SELECT position FROM {connection.ops.quote_name(ProjectionPosition._meta.db_table)}"  # noqa: S608
    " WHERE name = %s"
)


def projection_position(name: str) -> int:
    with connection.cursor() as cur:
        cur.execute(_POSITION_SQL, [name])
        row = cur.fetchone()
    return int(row[0]) if row else 0


def parse_after(request: Request) -> int | None:
    raw = request.query_params.get("after")
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise ValidationError({"after": ["Give the position a command returned (an integer)."]})
    return int(raw)


def wait_for(
    name: str,
    after: int | None,
    timeout: float | None = None,
    read_position: Callable[[str], int] = projection_position,
) -> tuple[int, bool]:
    """Wait until projection ``name`` reached ``after``; returns (position, stale).
    ``read_position``: where that projection keeps its position (PostgreSQL by default)."""
    position = read_position(name)
    if after is None or position >= after:
        return position, False
    deadline = time.monotonic() + (settings.READ_AFTER_TIMEOUT if timeout is None else timeout)
    delay = POLL_SECONDS
    while time.monotonic() < deadline:
        time.sleep(delay)
        delay = min(delay * 1.5, 0.05)
        position = read_position(name)
        if position >= after:
            return position, False
    return position, True


class ConsistentReadMixin:
    """For read views: ``self.consistent(request)`` before reading, ``self.mark(response)``."""

    projection: str
    _position: int = 0
    _stale: bool = False

    def read_position(self, name: str) -> int:
        return projection_position(name)

    def consistent(self, request: Request) -> None:
        self._position, self._stale = wait_for(
            self.projection, parse_after(request), read_position=self.read_position
        )

    def mark(self, response: Response) -> Response:
        response["X-Deskstream-Position"] = str(self._position)
        if self._stale:
            response["X-Deskstream-Stale"] = "true"
        return response
