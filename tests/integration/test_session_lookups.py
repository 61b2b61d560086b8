"""``AsyncSessions`` (the message lane's session check) against PostgreSQL: lookups asked
while a query is out go out together in the next one, and each still gets exactly the
answer it would have had alone (``authenticate_access``'s checks, row by row); a failed
query fails every lookup it carried.

Users and sessions are committed (``transaction=True``): the lookups read them on
connections of their own.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from infra.auth.models import AuthSession
from infra.auth.tokens import AsyncSessions, TokenError, authenticate_access, start_session
from infra.postgres.event_source import conninfo_from_django
from tests.conftest import create_user, free_port

pytestmark = pytest.mark.django_db(transaction=True)


def lookups(sessions: AsyncSessions, tokens: list[str]) -> list[Any]:
    """Every token's answer (a user, or the ``TokenError`` code), all asked at once."""

    async def main() -> list[Any]:
        try:
            return await asyncio.gather(
                *(sessions.authenticate(t) for t in tokens), return_exceptions=True
            )
        finally:
            await sessions.close()

    return [
        a.code if isinstance(a, TokenError) else a if isinstance(a, Exception) else a[0].email
        for a in asyncio.run(main())
    ]


def test_lookups_asked_together_share_a_query_and_each_gets_its_own_answer():
    valid, revoked, inactive, deleted = (create_user("customer") for _ in range(4))
    other = create_user("agent")
    tokens = {user.email: start_session(user).access for user in (valid, revoked, inactive, other)}
    AuthSession.objects.filter(user=revoked).update(revoked_at=timezone.now())
    inactive.is_active = False
    inactive.save(update_fields=["is_active"])
    gone = start_session(deleted).access
    AuthSession.objects.filter(user=deleted).delete()
    asked = [
        tokens[valid.email],
        tokens[revoked.email],
        tokens[inactive.email],
        gone,
        tokens[other.email],
        tokens[valid.email],  # the same session twice in one query
    ]
    sessions = AsyncSessions(conninfo_from_django(settings.DATABASES["default"]))

    # The first goes at once (nothing is out); the five asked while it is out share one.
    answers = lookups(sessions, asked)

    assert answers == [
        valid.email,
        "session_revoked",
        "user_inactive",
        "token_invalid",
        other.email,
        valid.email,
    ]
    assert sessions.queries == 2
    # Each answer is the one the request-thread path gives for the same token.
    for token, answer in zip(asked, answers, strict=True):
        try:
            expected = authenticate_access(token)[0].email
        except TokenError as error:
            expected = error.code
        assert answer == expected


def test_lookups_asked_while_every_connection_is_busy_go_out_together_next():
    users = [create_user("customer") for _ in range(5)]
    tokens = [start_session(user).access for user in users]
    # One connection: the first lookup goes out alone, the four asked while it is out
    # wait for it (no connection is free) and then share the second query.
    sessions = AsyncSessions(conninfo_from_django(settings.DATABASES["default"]), max_size=1)

    async def main() -> list[str]:
        try:
            first = asyncio.ensure_future(sessions.authenticate(tokens[0]))
            await asyncio.sleep(0)  # the first query is out
            rest = await asyncio.gather(*(sessions.authenticate(t) for t in tokens[1:]))
            return [(await first)[0].email, *(user.email for user, _ in rest)]
        finally:
            await sessions.close()

    assert asyncio.run(main()) == [user.email for user in users]
    assert sessions.queries == 2


def test_a_query_that_fails_fails_every_lookup_it_carried():
    users = [create_user("customer") for _ in range(3)]
    tokens = [start_session(user).access for user in users]
    sessions = AsyncSessions(
        f"host=127.0.0.1 port={free_port()} dbname=nowhere connect_timeout=1", timeout=0.5
    )

    answers = lookups(sessions, tokens)

    assert [type(a).__name__ for a in answers] == ["PoolTimeout"] * 3
    assert sessions.queries == 2  # the first alone, the two asked meanwhile together
