"""DRF authentication: ``Authorization: Bearer <access token>``."""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from infra.auth.models import User
from infra.auth.tokens import TokenError, authenticate_access


class TokenAuthenticationFailed(exceptions.AuthenticationFailed):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail=detail, code=code)
        self.error_code = code


class JWTAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, dict[str, Any]] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != self.keyword.lower() or not token.strip():
            raise TokenAuthenticationFailed(
                "token_invalid", "Use the header 'Authorization: Bearer <access token>'."
            )
        try:
            return authenticate_access(token.strip())
        except TokenError as err:
            raise TokenAuthenticationFailed(err.code, err.detail) from None

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'
