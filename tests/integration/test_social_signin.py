"""Social sign-in against the database and through the API's views: the pipeline's linking
rules, the one-time code (single use, expiry, browser binding), and the redirects the
browser gets for an unknown provider, an unreachable one, a denied consent and a forged
state. The whole round trip through a real OpenID provider is tests/e2e/test_social_signin.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client, override_settings
from social_django.models import UserSocialAuth

from infra.auth import signin_codes, social
from infra.auth.models import CustomerProfile, SignInCode, User
from infra.auth.providers import BACKENDS, Provider, from_environment
from tests.conftest import free_port

pytestmark = pytest.mark.django_db


class FakeBackend:
    """What the pipeline step reads of a backend: its name and the validated ID token."""

    def __init__(self, name: str, id_token: dict[str, Any] | None = None) -> None:
        self.name = name
        self.id_token = id_token


def verified(email: str) -> dict[str, Any]:
    return {"email": email, "email_verified": True}


# ------------------------------------------------------------------ pipeline


def test_a_verified_address_links_the_existing_user(make_user: Callable[..., Any]) -> None:
    agent = make_user("agent")
    users = User.objects.count()
    out = social.user_by_verified_email(
        FakeBackend("oidc"), {}, verified(agent.email.upper()), user=None
    )
    assert out == {"user": agent, "is_new": False}
    assert User.objects.count() == users


def test_an_unknown_verified_address_becomes_a_customer() -> None:
    out = social.user_by_verified_email(
        FakeBackend("github"),
        {"first_name": "Grace", "last_name": "Hopper"},
        {"emails": [{"email": "Grace@Navy.test", "primary": True, "verified": True}]},
        user=None,
    )
    assert out is not None
    user = out["user"]
    assert out["is_new"] is True
    assert (user.email, user.role, user.display_name, user.social_provider) == (
        "grace@navy.test",
        "customer",
        "Grace Hopper",
        "github",
    )
    assert not user.has_usable_password()
    assert CustomerProfile.objects.filter(user=user).exists()


def test_an_unverified_address_is_refused_and_creates_nobody(
    make_user: Callable[..., Any],
) -> None:
    agent = make_user("agent")
    users = User.objects.count()
    for email in (agent.email, "stranger@example.test"):
        with pytest.raises(social.SignInRefusedError) as caught:
            social.user_by_verified_email(
                FakeBackend("oidc"), {}, {"email": email, "email_verified": False}, user=None
            )
        assert caught.value.code == social.EMAIL_UNVERIFIED
    assert User.objects.count() == users


def test_an_account_linked_already_signs_in_its_user_whatever_its_address(
    make_user: Callable[..., Any],
) -> None:
    customer = make_user("customer")
    # social_user found the link: the provider's address (here unverified) decides nothing.
    out = social.user_by_verified_email(
        FakeBackend("oidc"), {}, {"email": "x@example.test"}, user=customer
    )
    assert out is None


def test_the_id_token_can_vouch_for_the_address(make_user: Callable[..., Any]) -> None:
    agent = make_user("agent")
    out = social.user_by_verified_email(
        FakeBackend("oidc", id_token=verified(agent.email)), {}, {}, user=None
    )
    assert out == {"user": agent, "is_new": False}


# ------------------------------------------------------------------ one-time codes


def test_a_code_works_once(make_user: Callable[..., Any]) -> None:
    user = make_user("customer")
    issued = signin_codes.issue(user, "oidc")
    assert signin_codes.redeem(issued.code, issued.binding) == user
    with pytest.raises(signin_codes.CodeError, match="unknown or was used"):
        signin_codes.redeem(issued.code, issued.binding)


def test_a_code_is_stored_as_digests_only(make_user: Callable[..., Any]) -> None:
    issued = signin_codes.issue(make_user("customer"), "oidc")
    row = SignInCode.objects.get()
    assert issued.code not in (row.digest, row.binding)
    assert issued.binding not in (row.digest, row.binding)


def test_an_expired_code_is_refused_and_used_up(make_user: Callable[..., Any]) -> None:
    issued = signin_codes.issue(make_user("customer"), "oidc")
    SignInCode.objects.update(expires_at=SignInCode.objects.get().expires_at - timedelta(hours=1))
    with pytest.raises(signin_codes.CodeError, match="expired"):
        signin_codes.redeem(issued.code, issued.binding)
    assert not SignInCode.objects.exists()


def test_a_code_from_another_browser_is_refused(make_user: Callable[..., Any]) -> None:
    issued = signin_codes.issue(make_user("customer"), "oidc")
    with pytest.raises(signin_codes.CodeError, match="another browser"):
        signin_codes.redeem(issued.code, "not-the-binding")
    # Burnt: whoever tried it, the code cannot be tried again.
    with pytest.raises(signin_codes.CodeError, match="unknown or was used"):
        signin_codes.redeem(issued.code, issued.binding)


def test_issuing_sweeps_expired_codes(make_user: Callable[..., Any]) -> None:
    user = make_user("customer")
    with override_settings(SIGNIN_CODE_TTL=timedelta(seconds=-1)):
        signin_codes.issue(user, "oidc")
    signin_codes.issue(user, "oidc")
    assert SignInCode.objects.count() == 1


# ------------------------------------------------------------------ the exchange endpoint


def exchange(client: Client, code: Any, **body: Any) -> Any:
    return client.post(
        "/api/auth/exchange", {"code": code, **body}, content_type="application/json"
    )


def test_the_exchange_answers_the_token_pair_once(make_user: Callable[..., Any]) -> None:
    user = make_user("agent")
    issued = signin_codes.issue(user, "oidc")
    client = Client()
    client.cookies["deskstream_signin_code"] = issued.binding
    answer = exchange(client, issued.code, cookie=True)
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert set(body) == {"access", "token_type", "expires_in"}  # refresh: in the cookie
    assert answer.cookies["deskstream_refresh"]["httponly"]
    assert answer.cookies["deskstream_signin_code"].value == ""  # the binding is cleared
    me = Client().get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert me.json()["email"] == user.email

    client.cookies["deskstream_signin_code"] = issued.binding
    again = exchange(client, issued.code)
    assert again.status_code == 401
    assert again.json()["error"] == "code_invalid"


def test_the_exchange_refuses_without_the_binding_cookie(make_user: Callable[..., Any]) -> None:
    issued = signin_codes.issue(make_user("customer"), "oidc")
    answer = exchange(Client(), issued.code)
    assert answer.status_code == 401
    assert answer.json() == {
        "error": "code_invalid",
        "detail": "This sign-in code belongs to another browser. Sign in again.",
    }


def test_the_exchange_refuses_a_deactivated_user(make_user: Callable[..., Any]) -> None:
    user = make_user("agent")
    issued = signin_codes.issue(user, "oidc")
    User.objects.filter(pk=user.pk).update(is_active=False)
    client = Client()
    client.cookies["deskstream_signin_code"] = issued.binding
    answer = exchange(client, issued.code)
    assert (answer.status_code, answer.json()["error"]) == (401, "user_inactive")


@pytest.mark.parametrize(
    ("body", "field"), [({}, "code"), ({"code": 12}, "code"), ({"code": "x", "extra": 1}, "extra")]
)
def test_the_exchange_refuses_bad_input(body: dict[str, Any], field: str) -> None:
    answer = Client().post("/api/auth/exchange", body, content_type="application/json")
    assert answer.status_code == 400
    assert field in answer.json()["fields"]


# ------------------------------------------------------------------ the browser's redirects


@pytest.fixture
def dead_oidc() -> Iterator[Provider]:
    """An OpenID provider configured at a port where nothing listens."""
    provider = Provider(
        "oidc",
        "Nowhere ID",
        BACKENDS["oidc"],
        {"KEY": "id", "SECRET": "secret", "OIDC_ENDPOINT": f"http://127.0.0.1:{free_port()}"},
    )
    with override_settings(SOCIAL_PROVIDERS=[provider]):
        yield provider


def landing(response: Any) -> dict[str, list[str]]:
    """Where a redirect sends the browser back to the web app: its fragment's parameters."""
    assert response.status_code == 302, response.content
    location = urlsplit(response["Location"])
    assert (location.netloc, location.path, location.query) == ("", "/", "")
    return parse_qs(location.fragment)


def test_the_providers_list_names_the_start_of_each_sign_in(dead_oidc: Provider) -> None:
    assert Client().get("/api/auth/providers").json()["providers"] == [
        {"id": "oidc", "name": "Nowhere ID", "url": "/api/auth/login/oidc"}
    ]


def test_an_unknown_provider_is_not_found(dead_oidc: Provider) -> None:
    for path in ("/api/auth/login/google", "/api/auth/complete/github"):
        answer = Client().get(path)
        assert answer.status_code == 404
        assert answer.json()["error"] == "not_found"


def test_an_unreachable_provider_comes_back_with_a_message(dead_oidc: Provider) -> None:
    answer = Client().get("/api/auth/login/oidc")
    assert landing(answer) == {"signin_error": ["provider_unreachable"], "provider": ["oidc"]}


def test_a_denied_consent_comes_back_with_a_message(dead_oidc: Provider) -> None:
    answer = Client().get("/api/auth/complete/oidc?error=access_denied&state=whatever")
    assert landing(answer) == {"signin_error": ["access_denied"], "provider": ["oidc"]}


def test_a_forged_or_stale_state_is_refused(dead_oidc: Provider) -> None:
    answer = Client().get("/api/auth/complete/oidc?code=stolen&state=forged")
    assert landing(answer) == {"signin_error": ["signin_expired"], "provider": ["oidc"]}
    answer = Client().get("/api/auth/complete/oidc?code=stolen")  # no state at all
    assert landing(answer)["signin_error"] == ["signin_expired"]
    assert not UserSocialAuth.objects.exists()
    assert not SignInCode.objects.exists()


def test_each_providers_start_asks_for_what_is_checked_on_return() -> None:
    """Google, GitHub and Facebook (no test server of theirs here): the redirect to each
    carries the client, our callback and a fresh state; Google and GitHub a PKCE challenge
    (S256), Google a nonce; GitHub asks for the addresses with their verified flags."""
    providers = from_environment(
        {
            "DESKSTREAM_GOOGLE_CLIENT_ID": "g-id",
            "DESKSTREAM_GOOGLE_CLIENT_SECRET": "g-secret",
            "DESKSTREAM_GITHUB_CLIENT_ID": "gh-id",
            "DESKSTREAM_GITHUB_CLIENT_SECRET": "gh-secret",
            "DESKSTREAM_FACEBOOK_CLIENT_ID": "fb-id",
            "DESKSTREAM_FACEBOOK_CLIENT_SECRET": "fb-secret",
        }
    )
    expected = {
        "google": ("accounts.google.com", "g-id", {"state", "nonce", "code_challenge"}),
        "github": ("github.com", "gh-id", {"state", "code_challenge"}),
        "facebook": ("www.facebook.com", "fb-id", {"state"}),
    }
    with override_settings(SOCIAL_PROVIDERS=providers):
        for provider, (host, client_id, checks) in expected.items():
            client = Client()
            answer = client.get(f"/api/auth/login/{provider}")
            assert answer.status_code == 302, (provider, answer.content)
            location = urlsplit(answer["Location"])
            query = parse_qs(location.query)
            assert location.scheme == "https"
            assert location.hostname == host
            assert query["client_id"] == [client_id]
            assert query["redirect_uri"] == [f"http://testserver/api/auth/complete/{provider}"]
            assert checks <= set(query), provider
            assert ("code_challenge" in query) == (query.get("code_challenge_method") == ["S256"])
            assert not {"nonce", "code_challenge"} & (set(query) - checks), provider
            if provider == "github":
                assert query["scope"] == ["user:email"]
            cookie = answer.cookies["deskstream_signin"]
            assert cookie["httponly"]
            assert cookie["samesite"] == "Lax"
            assert cookie["path"] == "/api/auth/"
