"""One-time codes: how a finished social sign-in reaches the web app without a token in a
URL (ADR 0038).

``issue`` stores the digests of a new code and of a browser binding; the redirect carries
the code in its fragment (never sent to a server, so never in an access log) and the
binding in an HttpOnly cookie. ``redeem`` takes both, deletes the row (single use) and
answers its user if the code has not expired. A code injected into another browser (a
link with someone else's code) fails there: that browser has no binding cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction

from infra.auth.models import SignInCode, User


class CodeError(Exception):
    """The code is unknown, used, expired, or not this browser's."""

    code = "code_invalid"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class IssuedCode:
    code: str  # for the URL fragment
    binding: str  # for the HttpOnly cookie


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def issue(user: User, provider: str) -> IssuedCode:
    issued = IssuedCode(code=secrets.token_urlsafe(32), binding=secrets.token_urlsafe(32))
    now = _now()
    with transaction.atomic():
        SignInCode.objects.filter(expires_at__lt=now).delete()  # the expired ones never redeemed
        SignInCode.objects.create(
            digest=_digest(issued.code),
            binding=_digest(issued.binding),
            user=user,
            provider=provider,
            expires_at=now + settings.SIGNIN_CODE_TTL,
        )
    return issued


def redeem(code: str, binding: str | None) -> User:
    """The user of a valid code, which is used up by this call whatever the answer."""
    with transaction.atomic():
        row = (
            SignInCode.objects.select_for_update()
            .select_related("user")
            .filter(digest=_digest(code))
            .first()
        )
        if row is None:
            raise CodeError("This sign-in code is unknown or was used already. Sign in again.")
        row.delete()
    if not binding or not hmac.compare_digest(row.binding, _digest(binding)):
        raise CodeError("This sign-in code belongs to another browser. Sign in again.")
    if row.expires_at <= _now():
        raise CodeError("This sign-in code has expired. Sign in again.")
    return row.user
