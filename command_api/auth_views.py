"""Auth commands: refresh and log out an API session, and the demo sign-in (demo mode only).

Two ways to hold the refresh token (ADR 0033). API clients get it in the body and send it
back in the body. The web app asks for the cookie (``"cookie": true`` at sign-in): the
token is then set in an HttpOnly, SameSite=Strict cookie (Secure unless
``DESKSTREAM_COOKIE_SECURE=0``) sent to ``/api/auth/`` only, and never appears in a body a
script could read. Refresh and logout by cookie need the site's own ``Origin`` (CSRF).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from infra.api import StrictCharField, StrictSerializer
from infra.auth import tokens
from infra.auth.models import CustomerProfile, User
from infra.ratelimit.throttles import RefreshThrottle, SignInThrottle

COOKIE = "deskstream_refresh"
COOKIE_PATH = "/api/auth/"


class RefreshSerializer(StrictSerializer):
    refresh = StrictCharField(
        max_length=4096, required=False, help_text="API clients; the web app sends the cookie."
    )


class DemoLoginSerializer(StrictSerializer):
    email = serializers.EmailField(max_length=254)
    cookie = serializers.BooleanField(
        default=False, help_text="Keep the refresh token in an HttpOnly cookie, not the body."
    )

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict) and not isinstance(data.get("email"), str):
            raise serializers.ValidationError({"email": ["Must be a string."]})
        return super().to_internal_value(data)


class TokenPairSerializer(serializers.Serializer[dict[str, object]]):
    access = serializers.CharField()
    refresh = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField()


def _token_error(err: tokens.TokenError) -> Response:
    return Response({"error": err.code, "detail": err.detail}, status=401)


def _answer(pair: tokens.TokenPair, *, cookie: bool) -> Response:
    """The new pair: the refresh token in the body, or only in the cookie."""
    if not cookie:
        return Response(pair.as_dict())
    response = Response({k: v for k, v in pair.as_dict().items() if k != "refresh"})
    response.set_cookie(
        COOKIE,
        pair.refresh,
        max_age=int(settings.JWT_REFRESH_TTL.total_seconds()),
        path=COOKIE_PATH,
        secure=settings.REFRESH_COOKIE_SECURE,
        httponly=True,
        samesite="Strict",
    )
    return response


class CsrfFailed(PermissionDenied):
    default_code = "csrf_failed"


def _refresh_token(request: Request) -> tuple[str, bool]:
    """The refresh token (from the body, else the cookie) and whether it came by cookie.

    By cookie the request must come from a page of this site: its ``Origin`` must name this
    host (SameSite=Strict already keeps other sites' requests from carrying the cookie;
    this also refuses a request with no Origin)."""
    data = RefreshSerializer.validated(request.data)
    if "refresh" in data:
        return data["refresh"], False
    token = request.COOKIES.get(COOKIE)
    if not token:
        raise ValidationError({"refresh": ["Send the refresh token, or the session cookie."]})
    origin = request.headers.get("Origin", "")
    if not origin or urlsplit(origin).netloc != request.get_host():
        raise CsrfFailed("A session cookie is accepted from this site's own pages only (Origin).")
    return token, True


class RefreshView(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes = [RefreshThrottle]

    @extend_schema(request=RefreshSerializer, responses={200: TokenPairSerializer})
    def post(self, request: Request) -> Response:
        token, by_cookie = _refresh_token(request)
        try:
            pair = tokens.rotate(token)
        except tokens.TokenError as err:
            return _token_error(err)
        return _answer(pair, cookie=by_cookie)


class LogoutView(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(request=RefreshSerializer, responses={204: None})
    def post(self, request: Request) -> Response:
        token, by_cookie = _refresh_token(request)
        try:
            tokens.logout(token)
        except tokens.TokenError as err:
            return _token_error(err)
        response = Response(status=204)
        if by_cookie:
            response.delete_cookie(COOKIE, path=COOKIE_PATH, samesite="Strict")
        return response


class DemoLoginView(APIView):
    """Sign in as any e-mail without a password; exists only when DESKSTREAM_DEMO is on."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes = [SignInThrottle]

    @extend_schema(request=DemoLoginSerializer, responses={200: TokenPairSerializer})
    def post(self, request: Request) -> Response:
        if not settings.DEMO_MODE:
            raise Http404
        data = DemoLoginSerializer.validated(request.data)
        email = data["email"].strip().lower()
        with transaction.atomic():
            user = User.objects.filter(email__iexact=email).first()
            if user is None:
                user = User.objects.create(
                    username=email,
                    email=email,
                    role=User.Role.CUSTOMER,
                    first_name=email.split("@")[0],
                )
                user.set_unusable_password()
                user.save(update_fields=["password"])
                CustomerProfile.objects.create(user=user)
        if not user.is_active:
            return Response({"error": "user_inactive", "detail": "This account is disabled."}, 401)
        return _answer(tokens.start_session(user), cookie=data["cookie"])
