"""Social sign-in: the browser's round trip through a provider, and the one-time code that
hands its result to the web app (ADR 0038).

1. ``GET /api/auth/login/<provider>`` (a link on the sign-in page) keeps state, nonce and
   PKCE verifier in a server-side session (cookie ``deskstream_signin``: HttpOnly,
   SameSite=Lax so the provider's redirect back carries it, sent to /api/auth/ only) and
   redirects to the provider.
2. ``GET /api/auth/complete/<provider>`` is where the provider sends the browser back.
   social-auth checks state, PKCE and (OpenID Connect) the ID token and its nonce; the
   pipeline links or creates the user (``infra/auth/social.py``). The browser is redirected
   to the web app with ``#signin_code=<one-time code>`` (a fragment: no server, so no log,
   ever sees it) and an HttpOnly binding cookie, or with ``#signin_error=<code>``.
3. ``POST /api/auth/exchange`` trades the code (once, within a minute, from the browser
   that holds the binding cookie) for the API's token pair, as the demo sign-in answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.contrib.sessions.backends.db import SessionStore
from django.http import HttpRequest, HttpResponseBase, HttpResponseRedirect
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from social_core.exceptions import SocialAuthBaseException

from command_api.auth_views import TokenPairSerializer, _answer
from infra.api import StrictCharField, StrictSerializer
from infra.auth import signin_codes, social, tokens
from infra.auth.models import User
from infra.auth.providers import Provider
from infra.ratelimit.throttles import SignInThrottle

logger = logging.getLogger(__name__)

SESSION_COOKIE = "deskstream_signin"
SESSION_COOKIE_PATH = "/api/auth/"
BINDING_COOKIE = "deskstream_signin_code"
BINDING_COOKIE_PATH = "/api/auth/exchange"


def _provider(provider: str) -> Provider:
    chosen = social.configured(provider)
    if chosen is None:
        raise NotFound(f"No sign-in provider {provider!r} is configured.")
    return chosen


def _open_session(request: HttpRequest) -> SessionBase:
    """The browser's sign-in session (a new one if its cookie names none that is stored)."""
    store = SessionStore(session_key=request.COOKIES.get(SESSION_COOKIE))
    request.session = store
    return store


def _keep_session(store: SessionBase, response: HttpResponseBase) -> None:
    """Save what the flow put in the session, or drop the session once nothing is left."""
    if not store.accessed:
        return
    if not list(store.keys()):
        if store.session_key:
            store.delete()
        response.delete_cookie(SESSION_COOKIE, path=SESSION_COOKIE_PATH, samesite="Lax")
        return
    if store.modified:
        store.set_expiry(settings.SIGNIN_SESSION_TTL)
        store.save()
        assert store.session_key is not None  # save() created it
        response.set_cookie(
            SESSION_COOKIE,
            store.session_key,
            max_age=settings.SIGNIN_SESSION_TTL,
            path=SESSION_COOKIE_PATH,
            secure=settings.REFRESH_COOKIE_SECURE,
            httponly=True,
            samesite="Lax",  # Strict would not come back with the provider's redirect
        )


def _failed(provider: Provider, error: Exception) -> HttpResponseRedirect:
    code = social.error_code(error)
    logger.warning(
        "social sign-in failed",
        extra={
            "provider": provider.id,
            "error_code": code,
            "social_code": getattr(error, "code", ""),
            "stage": getattr(error, "stage", ""),
        },
    )
    fragment = urlencode({"signin_error": code, "provider": provider.id})
    return HttpResponseRedirect(f"{settings.SIGNIN_REDIRECT_URL}#{fragment}")


REDIRECT = OpenApiResponse(
    description=(
        "A redirect (a browser navigation, not an API call): to the provider, or back to the "
        "web app with `#signin_code=<one-time code>` or `#signin_error=<code>` (access_denied, "
        "provider_unreachable, signin_expired, email_unverified, email_missing, user_inactive, "
        "provider_error)."
    )
)


class SocialBeginView(APIView):
    """Start a social sign-in: the browser is sent to the provider."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes = [SignInThrottle]
    error_statuses = [400, 404, 429]

    @extend_schema(responses={302: REDIRECT}, operation_id="auth_login_start")
    def get(self, request: Request, provider: str) -> HttpResponseBase:
        return _social_step(request, provider, lambda backend, chosen: backend.start())


class SocialCompleteView(APIView):
    """Where the provider sends the browser back: sign in, then back to the web app."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    error_statuses = [400, 404]

    @extend_schema(responses={302: REDIRECT}, operation_id="auth_login_complete")
    def get(self, request: Request, provider: str) -> HttpResponseBase:
        return _social_step(request, provider, _signed_in)


def _signed_in(backend: Any, chosen: Provider) -> HttpResponseBase:
    """The provider's answer checked: a one-time code for the web app, bound to this browser."""
    user = backend.complete(user=None)
    if not isinstance(user, User):
        raise social.SignInRefusedError(social.PROVIDER_ERROR, "It did not finish.")
    if not user.is_active:
        raise social.SignInRefusedError(social.USER_INACTIVE, "The account is disabled.")
    issued = signin_codes.issue(user, chosen.id)
    fragment = urlencode({"signin_code": issued.code})
    response = HttpResponseRedirect(f"{settings.SIGNIN_REDIRECT_URL}#{fragment}")
    response.set_cookie(
        BINDING_COOKIE,
        issued.binding,
        max_age=int(settings.SIGNIN_CODE_TTL.total_seconds()),
        path=BINDING_COOKIE_PATH,
        secure=settings.REFRESH_COOKIE_SECURE,
        httponly=True,
        samesite="Strict",
    )
    return response


def _social_step(
    request: Request,
    provider: str,
    step: Callable[[Any, Provider], HttpResponseBase],
) -> HttpResponseBase:
    """One leg of the redirect flow in the flow's own session: a refusal of the provider or of
    ours goes back to the web app as ``#signin_error=<code>``, never as an error page."""
    chosen = _provider(provider)
    http = request._request
    store = _open_session(http)
    response: HttpResponseBase
    try:
        backend = social.backend_for(
            http, chosen, reverse("auth-complete", kwargs={"provider": chosen.id})
        )
        response = step(backend, chosen)
    except (SocialAuthBaseException, social.SignInRefusedError) as error:
        response = _failed(chosen, error)
    _keep_session(store, response)
    return response


class SignInCodeSerializer(StrictSerializer):
    code = StrictCharField(
        max_length=128, help_text="The one-time code from the `#signin_code=` fragment."
    )
    cookie = serializers.BooleanField(
        default=False, help_text="Keep the refresh token in an HttpOnly cookie, not the body."
    )


class SignInExchangeView(APIView):
    """Trade a social sign-in's one-time code for the API's tokens (once, within a minute,
    in the browser that signed in: it sends the binding cookie)."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes = [SignInThrottle]

    @extend_schema(request=SignInCodeSerializer, responses={200: TokenPairSerializer})
    def post(self, request: Request) -> Response:
        data = SignInCodeSerializer.validated(request.data)
        response: Response
        try:
            user = signin_codes.redeem(data["code"], request.COOKIES.get(BINDING_COOKIE))
        except signin_codes.CodeError as error:
            response = Response({"error": error.code, "detail": error.detail}, status=401)
        else:
            if user.is_active:
                response = _answer(tokens.start_session(user), cookie=data["cookie"])
            else:
                response = Response(
                    {"error": "user_inactive", "detail": "This account is disabled."}, status=401
                )
        if BINDING_COOKIE in request.COOKIES:
            response.delete_cookie(BINDING_COOKIE, path=BINDING_COOKIE_PATH, samesite="Strict")
        return response
