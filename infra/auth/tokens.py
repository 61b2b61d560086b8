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
from collections.abc import Sequence
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
        cur.execute(query, [sid], prepare=True)
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
    first use, on the caller's loop)."""

    def __init__(self, conninfo: str, max_size: int = 4, timeout: float = 5.0) -> None:
        self._conninfo = conninfo
        self._max_size = max_size
        # Not psycopg_pool's 30 s: with PostgreSQL away, the caller (the message lane) hands
        # the request to Django's path, which reports it.
        self._timeout = timeout
        self._pool: AsyncConnectionPool[Any] | None = None
        self._opening = asyncio.Lock()

    async def authenticate(self, token: str) -> tuple[User, dict[str, Any]]:
        claims, sid = _access_claims(token)
        query, _ = _session_user_query()
        pool = self._pool or await self._open()
        async with pool.connection() as conn:
            cur = await conn.execute(query, [sid], prepare=True)
            row = await cur.fetchone()
        return _session_user(claims, row), claims

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
    if row[0] is not None:
        raise TokenError("session_revoked", "This session has been signed out.")
    user = User.from_db(DEFAULT_DB_ALIAS, _session_user_query()[1], row[1:])
    if str(user.pk) != claims["sub"]:
        raise TokenError("token_invalid", "The token does not match its session.")
    if not user.is_active:
        raise TokenError("user_inactive", "This account is disabled.")
    return user


@functools.cache
def _session_user_query() -> tuple[str, list[str]]:
    """``SELECT session.revoked_at, user.* ... WHERE session.id = %s`` and the user's fields."""
    user_fields = User._meta.concrete_fields
    session = AuthSession._meta
    query = sql.SQL("SELECT s.{}, {} FROM {} s JOIN {} u ON u.{} = s.{} WHERE s.{} = %s").format(
        sql.Identifier(session.get_field("revoked_at").column),
        sql.SQL(", ").join(sql.Identifier("u", f.column) for f in user_fields),
        sql.Identifier(session.db_table),
        sql.Identifier(User._meta.db_table),
        sql.Identifier(User._meta.pk.column),
        sql.Identifier(session.get_field("user").column),
        sql.Identifier(session.pk.column),
    )
    return query.as_string(None), [f.attname for f in user_fields]
