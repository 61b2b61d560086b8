"""Social sign-in with social-auth: the backends, the strategy that reads the configured
providers (``settings.SOCIAL_PROVIDERS``), and the pipeline's rules (ADR 0038).

The rules: a provider account already linked signs in its user. Otherwise the provider must
vouch for the e-mail address (verified); an existing user with that address is linked (an
invited agent or admin, or a customer who signed in another way before), and an unknown
address becomes a new customer. An unverified or missing address is refused: anyone can type
someone else's address into an account that does not check it.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string
from social_core.backends.base import BaseAuth
from social_core.backends.facebook import FacebookOAuth2
from social_core.backends.github import GithubOAuth2
from social_core.backends.google_openidconnect import GoogleOpenIdConnect
from social_core.backends.oauth import BaseOAuth2PKCE
from social_core.backends.open_id_connect import OpenIdConnectAuth
from social_core.exceptions import AuthConfigurationError, SocialAuthBaseException
from social_django.models import DjangoStorage
from social_django.strategy import DjangoStrategy

from infra.auth.models import CustomerProfile, User
from infra.auth.providers import Provider

# ------------------------------------------------------------------ errors

# The codes the web app receives after a failed sign-in (``#signin_error=<code>``).
ACCESS_DENIED = "access_denied"  # the user declined at the provider
PROVIDER_UNREACHABLE = "provider_unreachable"
SIGNIN_EXPIRED = "signin_expired"  # state, nonce or the browser's sign-in session
EMAIL_UNVERIFIED = "email_unverified"
EMAIL_MISSING = "email_missing"
USER_INACTIVE = "user_inactive"
PROVIDER_ERROR = "provider_error"  # anything else the provider got wrong

_UNREACHABLE = {"connection_failed", "timeout", "tls_error", "unavailable", "rate_limited"}
_EXPIRED = {
    "session_context_missing",
    "state_mismatch",
    "nonce_mismatch",
    "response_expired",
    "missing_parameter",
    "invalid_parameter",
}


class SignInRefusedError(Exception):
    """Our own rules refuse this sign-in; ``code`` is one of the codes above."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def error_code(error: Exception) -> str:
    """The code the web app shows a message for, from social-auth's error or ours."""
    if isinstance(error, SignInRefusedError):
        return error.code
    if isinstance(error, SocialAuthBaseException):
        if error.code == "authorization_declined":
            return ACCESS_DENIED
        if error.code in _UNREACHABLE:
            return PROVIDER_UNREACHABLE
        if error.code in _EXPIRED:
            return SIGNIN_EXPIRED
    return PROVIDER_ERROR


# ------------------------------------------------------------------ backends


class OidcSignIn(OpenIdConnectAuth[HttpResponse]):
    """Any OpenID Connect provider (DESKSTREAM_OIDC_ISSUER): state, nonce and PKCE (S256)."""

    name = "oidc"
    DEFAULT_USE_PKCE = True


class GoogleSignIn(GoogleOpenIdConnect[HttpResponse]):
    """Google through OpenID Connect: its ID token checked (signature, audience, nonce),
    PKCE, and the stable account id (``sub``), never the e-mail address, as the uid."""

    name = "google"
    DEFAULT_USE_PKCE = True

    def id_token_issuer(self) -> Any:
        # Google's documentation: "iss" is either of these (the base class knows one).
        return ["https://accounts.google.com", "accounts.google.com"]

    def get_user_id(self, details: Any, response: Any) -> Any:
        return (self.id_token or {}).get("sub") or response.get("sub")

    def user_data(self, access_token: str, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        # The access token goes in a header, not a URL (the base class puts it in the query);
        # whether the e-mail is verified is the pipeline's decision (verified_email).
        data: dict[str, Any] | None = self.validate_userinfo_sub(
            self.get_json(
                "https://openidconnect.googleapis.com/v1/userinfo",
                headers={"Authorization": f"Bearer {access_token}"},
            )
        )
        return data


class GithubSignIn(GithubOAuth2[HttpResponse], BaseOAuth2PKCE[HttpResponse]):
    """GitHub OAuth apps: state and PKCE; the addresses with their verified flags."""

    name = "github"
    DEFAULT_USE_PKCE = True


class FacebookSignIn(FacebookOAuth2[HttpResponse]):
    """Facebook Login: state, and the app secret proof on every Graph call. social-auth's
    Facebook backend exchanges the code its own way, without a PKCE verifier (ADR 0038)."""

    name = "facebook"


# ------------------------------------------------------------------ strategy


def configured(provider_id: str) -> Provider | None:
    providers: list[Provider] = settings.SOCIAL_PROVIDERS
    return next((p for p in providers if p.id == provider_id), None)


class SignInStrategy(DjangoStrategy):
    """social-auth's Django strategy, configured from ``settings.SOCIAL_PROVIDERS`` alone.

    Each provider's settings are its ``SOCIAL_AUTH_<ID>_*``; only configured providers are
    backends; and the pipeline runs on the backend directly: the users of this API sign in
    with its tokens (``start_session``), never Django's session authentication."""

    def get_setting(self, name: str) -> Any:
        for provider in settings.SOCIAL_PROVIDERS:
            prefix = f"SOCIAL_AUTH_{provider.id.upper()}_"
            if name.startswith(prefix) and name[len(prefix) :] in provider.settings:
                return provider.settings[name[len(prefix) :]]
        return super().get_setting(name)  # type: ignore[no-untyped-call]

    def get_backends(self) -> list[str]:
        return [p.backend for p in settings.SOCIAL_PROVIDERS]

    def get_backend_class(self, name: str) -> type[BaseAuth[HttpResponse]]:
        provider = configured(name)
        if provider is None:
            raise AuthConfigurationError(None, name, code="backend_missing", parameter="backend")
        backend: type[BaseAuth[HttpResponse]] = import_string(provider.backend)
        return backend

    def authenticate(self, backend: BaseAuth[Any], *args: Any, **kwargs: Any) -> Any:
        # social-auth's own way (BaseStrategy), not through django.contrib.auth's backends.
        kwargs.pop("request", None)
        kwargs.update(strategy=self, storage=self.storage, backend=backend)
        return backend.authenticate(*args, **kwargs)

    def clean_authenticate_args(self, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        # Django's authenticate() passes the request first; this path passes none.
        kwargs.pop("request", None)
        return args, kwargs


def backend_for(request: HttpRequest, provider: Provider, redirect_uri: str) -> BaseAuth[Any]:
    """The backend of ``provider`` for this request; ``request.session`` must be set."""
    strategy = SignInStrategy(DjangoStorage, request)
    return strategy.get_backend(provider.id, redirect_uri=redirect_uri)


# ------------------------------------------------------------------ pipeline


def _is_true(value: Any) -> bool:
    # Some providers send the claim as a string (e.g. AWS Cognito's "true").
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def verified_email(
    provider_id: str, response: dict[str, Any], id_token: dict[str, Any] | None
) -> str:
    """The address the provider vouches for, lower-cased, or ``SignInRefusedError``.

    - OpenID Connect and Google: the ``email`` and ``email_verified`` claims (UserInfo, else
      the ID token).
    - GitHub: the primary address of ``/user/emails``, if GitHub marks it verified.
    - Facebook: the Graph API gives the address only once the user has confirmed it, and has
      no flag to say so (ADR 0038); trusted unless DESKSTREAM_FACEBOOK_EMAIL_TRUSTED=0.
    """
    email: Any = None
    verified = False
    if provider_id == "github":
        emails = response.get("emails")
        entries = [e for e in emails if isinstance(e, dict)] if isinstance(emails, list) else []
        primary = next((e for e in entries if e.get("primary")), None)
        if primary is not None:
            email, verified = primary.get("email"), _is_true(primary.get("verified"))
    elif provider_id == "facebook":
        email, verified = response.get("email"), bool(settings.FACEBOOK_EMAIL_TRUSTED)
    else:
        claims = {**(id_token or {}), **response}
        email, verified = claims.get("email"), _is_true(claims.get("email_verified"))
    if not isinstance(email, str) or "@" not in email.strip():
        raise SignInRefusedError(EMAIL_MISSING, "The provider did not share an e-mail address.")
    if not verified:
        raise SignInRefusedError(EMAIL_UNVERIFIED, "The provider has not verified the address.")
    return email.strip().lower()


def _names(details: dict[str, Any], email: str) -> tuple[str, str]:
    first = str(details.get("first_name") or "").strip()
    last = str(details.get("last_name") or "").strip()
    if not first and not last:
        first = str(details.get("fullname") or "").strip() or email.split("@")[0]
    return first[:150], last[:150]


def create_customer(email: str, details: dict[str, Any], provider_id: str) -> User:
    """A new customer for ``email``; the one created meanwhile by a parallel sign-in if any."""
    first, last = _names(details, email)
    try:
        with transaction.atomic():
            user = User.objects.create(
                username=email if len(email) <= 150 else f"user-{uuid.uuid4().hex}",
                email=email,
                role=User.Role.CUSTOMER,
                first_name=first,
                last_name=last,
                social_provider=provider_id,
            )
            user.set_unusable_password()
            user.save(update_fields=["password"])
            CustomerProfile.objects.create(user=user)
            return user
    except IntegrityError:
        return User.objects.get(email__iexact=email)


def user_by_verified_email(
    backend: BaseAuth[Any],
    details: dict[str, Any],
    response: dict[str, Any],
    *args: Any,
    user: User | None = None,
    **kwargs: Any,
) -> dict[str, Any] | None:
    """Pipeline step after ``social_user``: the user a not yet linked account belongs to."""
    if user is not None:  # this provider account is linked already
        return None
    id_token = getattr(backend, "id_token", None)
    email = verified_email(backend.name, response, id_token if isinstance(id_token, dict) else None)
    existing = User.objects.filter(email__iexact=email).first()
    if existing is not None:
        return {"user": existing, "is_new": False}
    return {"user": create_customer(email, details, backend.name), "is_new": True}


def remember_provider(
    backend: BaseAuth[Any], *args: Any, user: User | None = None, **kwargs: Any
) -> None:
    """Last pipeline step: the user's ``social_provider`` is the one they last signed in with."""
    if user is not None and user.social_provider != backend.name:
        user.social_provider = backend.name
        user.save(update_fields=["social_provider"])
