"""DRF throttles over ``policy.check``: one per scope, no cache of DRF's own.

A request the message lane already counted (it falls back to Django after counting) is not
counted again (``COUNTED`` in the ASGI scope).
"""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from infra.ratelimit import policy

COUNTED = "deskstream.rate_counted"


class ScopeThrottle(BaseThrottle):
    scope = ""

    def __init__(self) -> None:
        self._wait: int | None = None

    def user_key(self, request: Request) -> str | None:
        user = request.user
        return str(user.pk) if user is not None and user.is_authenticated else None

    def allow_request(self, request: Request, view: Any) -> bool:
        if getattr(request._request, "scope", {}).get(COUNTED):
            return True
        self._wait = policy.check(self.scope, self.user_key(request), self.address(request))
        return self._wait is None

    def address(self, request: Request) -> str | None:
        # The peer's address as the server saw it: X-Forwarded-For is not trusted here.
        address = request.META.get("REMOTE_ADDR")
        return str(address) if address else None

    def wait(self) -> float | None:
        return self._wait


class SignInThrottle(ScopeThrottle):
    scope = "sign_in"

    def user_key(self, request: Request) -> str | None:
        data = request.data
        email = data.get("email") if isinstance(data, dict) else None
        return email.strip().lower() if isinstance(email, str) else None


class RefreshThrottle(ScopeThrottle):
    scope = "refresh"

    def user_key(self, request: Request) -> str | None:
        return None


class TicketCreationThrottle(ScopeThrottle):
    scope = "ticket_creation"


class MessageThrottle(ScopeThrottle):
    scope = "messages"


class SearchThrottle(ScopeThrottle):
    scope = "search"
