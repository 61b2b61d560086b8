"""API sessions with PyJWT: short access tokens, rotating refresh tokens, reuse detection.

A sign-in starts an ``AuthSession`` (the refresh-token family). Each refresh token can be
used exactly once: using it returns a new pair and marks it used. Presenting a used token
again means it leaked (or a client raced itself): the whole family is revoked, so the thief
and the victim both have to sign in again. Access tokens carry the session id, so logout
and revocation take effect on the next request, not only when the access token expires.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
import psycopg
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from infra.auth.models import AuthSession, RefreshToken, User

ALGORITHM = "HS256"
ACCESS = "access"
REFRESH = "refresh"
_Row = Sequence[Any] | None  # a row of ``_session_user_query``, if the session exists


class TokenError(Exception):
    """A token that cannot be used; ``code`` is stable and documented for clients."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str
    access_expires_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "access": self.access,
            "refresh": self.refresh,
            "token_type": "Bearer",
            "expires_in": int(settings.JWT_ACCESS_TTL.total_seconds()),
        }


def _now() -> datetime:
    return datetime.now(UTC)


def _encode(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, settings.SECRET_KEY, algorithm=ALGORITHM)


def _decode(token: str, kind: str) -> dict[str, Any]:
    try:
        if kind == ACCESS:
            claims = dict(_verified_access(token, settings.SECRET_KEY, settings.JWT_ISSUER))
            # Remembered from an earlier request: expiry is the one check that changes with
            # time (PyJWT's rule: expired once exp <= now); ``iat`` was in the past already.
            if int(claims["exp"]) <= _now().timestamp():
                raise jwt.ExpiredSignatureError("Signature has expired")
        else:
            claims = _verified(token, settings.SECRET_KEY, settings.JWT_ISSUER)
    except jwt.ExpiredSignatureError:
        raise TokenError("token_expired", f"The {kind} token has expired.") from None
    except jwt.InvalidTokenError:
        raise TokenError("token_invalid", f"The {kind} token is not valid.") from None
    if claims.get("typ") != kind:
        raise TokenError("token_invalid", f"This is not an {kind} token.")
    return claims


def _verified(token: str, key: str, issuer: str) -> dict[str, Any]:
    """PyJWT's decoding: the signature, the issuer, the required claims, expiry and ``iat``."""
    claims: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=[ALGORITHM],
        issuer=issuer,
        options={"require": ["exp", "iat", "sub", "sid", "typ", "jti"]},
    )
    return claims


# An access token is presented on every request of its session for its lifetime (10 min),
# and PyJWT parsed and verified it every time (ADR 0021). A token that passed is remembered
# (only a pure function of the token, key and issuer, and never the session: that is read
# on every request, so logout still acts on the next one); the caller copies the claims.
_verified_access = functools.lru_cache(maxsize=8192)(_verified)


def _issue(session: AuthSession) -> TokenPair:
    now = _now()
    access_exp = now + settings.JWT_ACCESS_TTL
    refresh_exp = now + settings.JWT_REFRESH_TTL
    user: User = session.user
    base = {"iss": settings.JWT_ISSUER, "sub": str(user.pk), "sid": str(session.id), "iat": now}
    access = _encode(
        {**base, "typ": ACCESS, "role": user.role, "exp": access_exp, "jti": uuid.uuid4().hex}
    )
    jti = uuid.uuid4()
    RefreshToken.objects.create(jti=jti, session=session, issued_at=now, expires_at=refresh_exp)
    refresh = _encode({**base, "typ": REFRESH, "exp": refresh_exp, "jti": jti.hex})
    return TokenPair(access=access, refresh=refresh, access_expires_at=access_exp)


def start_session(user: User) -> TokenPair:
    with transaction.atomic():
        session = AuthSession.objects.create(user=user)
        return _issue(session)


def rotate(refresh_token: str) -> TokenPair:
    """Exchange a refresh token for a new pair; a reused token revokes its whole family."""
    claims = _decode(refresh_token, REFRESH)
    reused = False
    with transaction.atomic():
        try:
            row = (
                RefreshToken.objects.select_for_update()
                .select_related("session__user")
                .get(jti=uuid.UUID(hex=claims["jti"]))
            )
        except (RefreshToken.DoesNotExist, ValueError, DjangoValidationError):
            raise TokenError("token_invalid", "Unknown refresh token.") from None
        session = row.session
        if session.revoked_at is not None:
            raise TokenError("session_revoked", "This session has been signed out.")
        if not session.user.is_active:
            raise TokenError("user_inactive", "This account is disabled.")
        if row.used_at is not None:
            session.revoked_at = _now()
            session.revoked_reason = "refresh_reuse"
            session.save(update_fields=["revoked_at", "revoked_reason"])
            reused = True
        else:
            row.used_at = _now()
            row.save(update_fields=["used_at"])
            return _issue(session)
    assert reused
    raise TokenError(
        "refresh_reused",
        "This refresh token was already used; the session has been revoked. Sign in again.",
    )


def logout(refresh_token: str) -> None:
    claims = _decode(refresh_token, REFRESH)
    updated = AuthSession.objects.filter(id=claims["sid"], revoked_at__isnull=True).update(
        revoked_at=_now(), revoked_reason="logout"
    )
    if not updated and not AuthSession.objects.filter(id=claims["sid"]).exists():
        raise TokenError("token_invalid", "Unknown session.")


def authenticate_access(token: str) -> tuple[User, dict[str, Any]]:
    """The user an access token speaks for; one indexed query (session joined with user)."""
    claims, sid = _access_claims(token)
    # Raw SQL, built once: the ORM compiled the same select_related query on every request,
    # which was a fifth of the web server's CPU per command (bench/commands.py profile).
    # Run as a prepared statement on the request's own connection (Django's cursors bind
    # parameters on the client, so PostgreSQL parsed and planned it every time), with
    # Django's translation of database errors (ADR 0020).
    query, _ = _session_user_query()
    connection = connections[DEFAULT_DB_ALIAS]  # once: each lookup goes through asgiref's Local
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cur:
        cur.execute(query, [_id_array([sid])], prepare=True)
        row = cur.fetchone()
    if not connection.in_atomic_block:
        # Back to the pool now, not when the response is closed: a command spends most of
        # its time waiting for its group commit, which does not use this connection, and 32
        # such requests held all 24 of the pool's connections while others queued for one
        # (ADR 0021). A view that queries later takes one again.
        connection.close()
    return _session_user(claims, row), claims


class AsyncSessions:
    """``authenticate_access`` for a caller on an event loop: the same checks of the token,
    and the same query, on a connection of a small asynchronous pool of its own (opened on
    first use, on the caller's loop).

    Lookups that arrive together share one query: with nothing out, a lookup goes at once;
    while a query is out, the next ones wait for the next turn of the loop, or, while every
    connection of the pool has a query out, for one to come back, and then go out with all
    the others waiting by then (``WHERE id = ANY(...)``). Each is still read after its
    request arrived, and answered from its own row as before; one query for many saves the
    pool hand-over, the round trip and PostgreSQL's execution per request, which were most
    of the session check's CPU on the event loop at 32 clients (ADR 0055)."""

    def __init__(self, conninfo: str, max_size: int = 4, timeout: float = 5.0) -> None:
        self._conninfo = conninfo
        self._max_size = max_size
        # Not psycopg_pool's 30 s: with PostgreSQL away, the caller (the message lane) hands
        # the request to Django's path, which reports it.
        self._timeout = timeout
        self._pool: AsyncConnectionPool[Any] | None = None
        self._opening = asyncio.Lock()
        self._waiting: dict[uuid.UUID, list[asyncio.Future[_Row]]] = {}
        self._out = 0  # queries sent and not answered yet (at most ``max_size``)
        self._turn = False  # a ``_send`` is scheduled for the next turn of the loop
        self._tasks: set[asyncio.Task[None]] = set()  # the queries out (kept referenced)
        self.queries = 0  # queries sent so far (each carried every lookup waiting then)

    async def authenticate(self, token: str) -> tuple[User, dict[str, Any]]:
        claims, sid = _access_claims(token)
        future: asyncio.Future[_Row] = asyncio.get_running_loop().create_future()
        if not self._out and not self._waiting:
            # Nothing out and nothing queued (a quiet server): this one goes at once, from
            # its own task, without waiting for a turn of the loop.
            self._out += 1
            self.queries += 1
            await self._query({sid: [future]})
            return _session_user(claims, future.result()), claims
        self._waiting.setdefault(sid, []).append(future)
        self._schedule()
        return _session_user(claims, await future), claims

    def _schedule(self) -> None:
        if not self._turn and self._out < self._max_size and self._waiting:
            self._turn = True
            asyncio.get_running_loop().call_soon(self._send)

    def _send(self) -> None:
        self._turn = False
        waiting, self._waiting = self._waiting, {}
        if not waiting:
            return
        self._out += 1
        self.queries += 1
        task = asyncio.get_running_loop().create_task(self._query(waiting))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _query(self, waiting: dict[uuid.UUID, list[asyncio.Future[_Row]]]) -> None:
        try:
            query, _ = _session_user_query()
            pool = self._pool or await self._open()
            async with pool.connection() as conn:
                cur = await conn.execute(query, [_id_array(waiting)], prepare=True)
                rows = {row[0]: row for row in await cur.fetchall()}
        except Exception as exc:  # PostgreSQL away: every request it carried hears of it
            for futures in waiting.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
        except BaseException:  # the loop is going away
            for futures in waiting.values():
                for future in futures:
                    future.cancel()
            raise
        else:
            for sid, futures in waiting.items():
                for future in futures:
                    if not future.done():  # its request may have been cancelled meanwhile
                        future.set_result(rows.get(sid))
        finally:
            self._out -= 1
            self._schedule()

    async def _open(self) -> AsyncConnectionPool[Any]:
        async with self._opening:  # the first requests arrive together
            if self._pool is None:
                pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
                    self._conninfo,
                    min_size=1,
                    max_size=self._max_size,
                    kwargs={"autocommit": True},
                    open=False,
                    name="sessions",
                    timeout=self._timeout,
                )
                await pool.open()
                self._pool = pool
        return self._pool

    async def close(self) -> None:
        """Close the pool (it belongs to the loop it was opened on); lookups still queued
        are cancelled, so the next loop starts with none."""
        waiting, self._waiting, self._turn = self._waiting, {}, False
        for futures in waiting.values():
            for future in futures:
                future.cancel()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def _access_claims(token: str) -> tuple[dict[str, Any], uuid.UUID]:
    claims = _decode(token, ACCESS)
    try:
        return claims, uuid.UUID(claims["sid"])
    except (TypeError, ValueError, AttributeError):
        raise TokenError("token_invalid", "Unknown session.") from None


def _session_user(claims: dict[str, Any], row: Sequence[Any] | None) -> User:
    """The user of ``_session_user_query``'s row, if the session and user may act."""
    if row is None:
        raise TokenError("token_invalid", "Unknown session.")
    if row[1] is not None:
        raise TokenError("session_revoked", "This session has been signed out.")
    user = User.from_db(DEFAULT_DB_ALIAS, _session_user_query()[1], row[2:])
    if str(user.pk) != claims["sub"]:
        raise TokenError("token_invalid", "The token does not match its session.")
    if not user.is_active:
        raise TokenError("user_inactive", "This account is disabled.")
    return user


def _id_array(ids: Iterable[uuid.UUID]) -> str:
    """The session ids as PostgreSQL's text form of an array (``{id,id}``), which the query
    casts: psycopg's adaptation of a Python list costs more than the query saves for one."""
    return "{" + ",".join(map(str, ids)) + "}"


@functools.cache
def _session_user_query() -> tuple[str, list[str]]:
    """``SELECT session.id, session.revoked_at, user.* ... WHERE session.id = ANY(%s)``
    (the sessions of a list of ids: ``AsyncSessions`` asks for several at once) and the
    user's fields."""
    user_fields = User._meta.concrete_fields
    session = AuthSession._meta
    query = sql.SQL(
        "SELECT s.{}, s.{}, {} FROM {} s JOIN {} u ON u.{} = s.{} WHERE s.{} = ANY(%s::uuid[])"
    ).format(
        sql.Identifier(session.pk.column),
        sql.Identifier(session.get_field("revoked_at").column),
        sql.SQL(", ").join(sql.Identifier("u", f.column) for f in user_fields),
        sql.Identifier(session.db_table),
        sql.Identifier(User._meta.db_table),
        sql.Identifier(User._meta.pk.column),
        sql.Identifier(session.get_field("user").column),
        sql.Identifier(session.pk.column),
    )
    return query.as_string(None), [f.attname for f in user_fields]
