"""The rules of social sign-in that need no server: which providers the environment turns on,
which e-mail address each provider vouches for, and what the web app is told on failure."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings
from social_core.exceptions import AuthCanceled, AuthProviderError, AuthSessionError

from infra.auth import social
from infra.auth.providers import ProviderConfigError, from_environment

# ------------------------------------------------------------------ providers


def test_no_provider_without_credentials() -> None:
    assert from_environment({}) == []


def test_each_provider_from_its_environment_variables() -> None:
    env = {
        "DESKSTREAM_GOOGLE_CLIENT_ID": "g-id",
        "DESKSTREAM_GOOGLE_CLIENT_SECRET": "g-secret",
        "DESKSTREAM_GITHUB_CLIENT_ID": "gh-id",
        "DESKSTREAM_GITHUB_CLIENT_SECRET": "gh-secret",
        "DESKSTREAM_FACEBOOK_CLIENT_ID": "fb-id",
        "DESKSTREAM_FACEBOOK_CLIENT_SECRET": "fb-secret",
        "DESKSTREAM_OIDC_ISSUER": "https://id.example.test/",
        "DESKSTREAM_OIDC_CLIENT_ID": "o-id",
        "DESKSTREAM_OIDC_CLIENT_SECRET": "o-secret",
        "DESKSTREAM_OIDC_NAME": "Example ID",
    }
    providers = from_environment(env)
    assert [(p.id, p.name) for p in providers] == [
        ("google", "Google"),
        ("github", "GitHub"),
        ("facebook", "Facebook"),
        ("oidc", "Example ID"),
    ]
    assert providers[0].settings == {"KEY": "g-id", "SECRET": "g-secret"}
    assert providers[1].settings["SCOPE"] == ["user:email"]
    assert providers[3].settings["OIDC_ENDPOINT"] == "https://id.example.test"


@pytest.mark.parametrize(
    "env",
    [
        {"DESKSTREAM_GITHUB_CLIENT_ID": "only-the-id"},
        {"DESKSTREAM_GOOGLE_CLIENT_SECRET": "only-the-secret"},
        {"DESKSTREAM_OIDC_CLIENT_ID": "id", "DESKSTREAM_OIDC_CLIENT_SECRET": "no issuer"},
        {"DESKSTREAM_OIDC_ISSUER": "https://id.example.test"},
    ],
)
def test_a_half_configured_provider_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(ProviderConfigError):
        from_environment(env)


def test_the_strategy_reads_each_providers_settings() -> None:
    providers = from_environment(
        {"DESKSTREAM_GITHUB_CLIENT_ID": "gh-id", "DESKSTREAM_GITHUB_CLIENT_SECRET": "gh-secret"}
    )
    with override_settings(SOCIAL_PROVIDERS=providers):
        strategy = social.SignInStrategy(None)
        backend = strategy.get_backend("github", redirect_uri="/api/auth/complete/github")
        assert isinstance(backend, social.GithubSignIn)
        assert backend.get_key_and_secret() == ("gh-id", "gh-secret")
        assert backend.setting("USE_PKCE", backend.DEFAULT_USE_PKCE) is True
        with pytest.raises(Exception, match="backend"):
            strategy.get_backend("google")  # not configured here


# ------------------------------------------------------------------ verified e-mail


def refused(provider: str, response: dict[str, Any], id_token: Any = None) -> str:
    with pytest.raises(social.SignInRefusedError) as caught:
        social.verified_email(provider, response, id_token)
    return caught.value.code


@pytest.mark.parametrize("provider", ["oidc", "google"])
def test_openid_providers_vouch_with_the_email_verified_claim(provider: str) -> None:
    ok = {"email": " Ada@Example.TEST ", "email_verified": True}
    assert social.verified_email(provider, ok, None) == "ada@example.test"
    assert social.verified_email(provider, {**ok, "email_verified": "true"}, None)
    # The UserInfo answer may leave the claims to the ID token.
    assert social.verified_email(provider, {}, ok) == "ada@example.test"
    assert refused(provider, {**ok, "email_verified": False}) == social.EMAIL_UNVERIFIED
    assert refused(provider, {"email": "ada@example.test"}) == social.EMAIL_UNVERIFIED
    assert refused(provider, {"email": "ada@example.test"}, {"email_verified": "no"}) == (
        social.EMAIL_UNVERIFIED
    )
    assert refused(provider, {"email_verified": True}) == social.EMAIL_MISSING
    assert refused(provider, {"email": "", "email_verified": True}) == social.EMAIL_MISSING


def test_github_vouches_for_its_primary_address_when_verified() -> None:
    emails = [
        {"email": "old@example.test", "primary": False, "verified": True},
        {"email": "Main@Example.test", "primary": True, "verified": True},
    ]
    assert social.verified_email("github", {"emails": emails}, None) == "main@example.test"
    emails[1]["verified"] = False  # a verified secondary address does not stand in for it
    assert refused("github", {"emails": emails}) == social.EMAIL_UNVERIFIED
    # The public profile address alone carries no verified flag.
    assert refused("github", {"email": "main@example.test"}) == social.EMAIL_MISSING


def test_facebook_shares_confirmed_addresses_only() -> None:
    assert social.verified_email("facebook", {"email": "F@example.test"}, None) == (
        "f@example.test"
    )
    assert refused("facebook", {}) == social.EMAIL_MISSING
    with override_settings(FACEBOOK_EMAIL_TRUSTED=False):
        assert refused("facebook", {"email": "f@example.test"}) == social.EMAIL_UNVERIFIED


# ------------------------------------------------------------------ errors


def test_errors_become_the_codes_the_web_app_explains() -> None:
    assert social.error_code(AuthCanceled(None)) == social.ACCESS_DENIED
    for unreachable in ("connection_failed", "timeout", "unavailable"):
        assert social.error_code(AuthProviderError(None, code=unreachable)) == (
            social.PROVIDER_UNREACHABLE
        )
    for expired in ("state_mismatch", "session_context_missing", "nonce_mismatch"):
        assert social.error_code(AuthSessionError(None, code=expired)) == social.SIGNIN_EXPIRED
    assert social.error_code(AuthProviderError(None, code="http_error")) == social.PROVIDER_ERROR
    refused_here = social.SignInRefusedError("email_unverified", "no")
    assert social.error_code(refused_here) == "email_unverified"
    assert social.error_code(ValueError("anything else")) == social.PROVIDER_ERROR


# ------------------------------------------------------------------ logs


def test_the_access_log_never_carries_the_providers_code() -> None:
    import logging

    from infra.auth.log_redaction import RedactSignInCallback

    def line(path: str) -> str:
        record = logging.LogRecord(
            "uvicorn.access",
            logging.INFO,
            __file__,
            1,
            '%s - "%s %s HTTP/%s" %d',
            ("127.0.0.1:5000", "GET", path, "1.1", 302),
            None,
        )
        assert RedactSignInCallback().filter(record)
        return record.getMessage()

    assert line("/api/auth/complete/oidc?code=SECRET&state=S") == (
        '127.0.0.1:5000 - "GET /api/auth/complete/oidc?[redacted] HTTP/1.1" 302'
    )
    assert line("/api/tickets?status=open").endswith('"GET /api/tickets?status=open HTTP/1.1" 302')
