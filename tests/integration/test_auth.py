"""API sessions: access tokens, rotating refresh tokens with reuse detection, logout, demo login."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from infra.auth.models import AuthSession, User
from infra.auth.tokens import start_session

pytestmark = pytest.mark.django_db


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def refresh(refresh_token: str):
    return APIClient().post("/api/auth/refresh", {"refresh": refresh_token}, format="json")


def test_access_token_claims_and_lifetime(make_user):
    user = make_user("agent")
    pair = start_session(user)
    claims = jwt.decode(pair.access, settings.SECRET_KEY, algorithms=["HS256"], issuer="deskstream")
    assert claims["sub"] == str(user.pk)
    assert claims["role"] == "agent"
    assert claims["typ"] == "access"
    assert claims["exp"] - claims["iat"] == 600
    me = bearer(pair.access).get("/api/auth/me")
    assert me.status_code == 200
    assert me.json()["role"] == "agent"


def test_requests_without_a_token_are_401():
    r = APIClient().get("/api/auth/me")
    assert r.status_code == 401
    assert r.json()["error"] == "not_authenticated"
    r = APIClient().post("/api/tickets", {"subject": "x"}, format="json")
    assert r.status_code == 401


def test_garbage_and_refresh_tokens_are_not_access_tokens(make_user):
    r = bearer("not.a.jwt").get("/api/auth/me")
    assert (r.status_code, r.json()["error"]) == (401, "token_invalid")
    pair = start_session(make_user())
    r = bearer(pair.refresh).get("/api/auth/me")
    assert (r.status_code, r.json()["error"]) == (401, "token_invalid")


def test_expired_access_token_is_401_token_expired(make_user, settings):
    settings.JWT_ACCESS_TTL = timedelta(seconds=-1)
    pair = start_session(make_user())
    r = bearer(pair.access).get("/api/auth/me")
    assert (r.status_code, r.json()["error"]) == (401, "token_expired")


def test_a_remembered_access_token_still_expires_and_its_session_is_still_read(
    make_user, settings, monkeypatch
):
    """Verified tokens are remembered (ADR 0021); expiry and the session are checked anew."""
    from infra.auth import tokens

    pair = start_session(make_user())
    assert bearer(pair.access).get("/api/auth/me").status_code == 200
    assert bearer(pair.access).get("/api/auth/me").status_code == 200  # remembered
    exp = jwt.decode(pair.access, options={"verify_signature": False})["exp"]
    later = tokens._now() + timedelta(seconds=exp - tokens._now().timestamp() + 1)
    monkeypatch.setattr(tokens, "_now", lambda: later)
    r = bearer(pair.access).get("/api/auth/me")
    assert (r.status_code, r.json()["error"]) == (401, "token_expired")
    monkeypatch.undo()
    assert bearer(pair.access).get("/api/auth/me").status_code == 200
    AuthSession.objects.update(revoked_at=tokens._now())
    r = bearer(pair.access).get("/api/auth/me")
    assert (r.status_code, r.json()["error"]) == (401, "session_revoked")
    settings.SECRET_KEY = "another-key-" + "x" * 40
    r = bearer(pair.access).get("/api/auth/me")
    assert (r.status_code, r.json()["error"]) == (401, "token_invalid")


def test_refresh_rotates_and_reuse_revokes_the_family(make_user):
    user = make_user()
    first = start_session(user)
    r = refresh(first.refresh)
    assert r.status_code == 200
    second = r.json()
    assert set(second) == {"access", "refresh", "token_type", "expires_in"}
    assert second["refresh"] != first.refresh
    assert bearer(second["access"]).get("/api/auth/me").status_code == 200

    # The first refresh token is presented again: treated as stolen.
    r = refresh(first.refresh)
    assert (r.status_code, r.json()["error"]) == (401, "refresh_reused")
    # The whole family is revoked: the newest refresh and access tokens stop working too.
    r = refresh(second["refresh"])
    assert (r.status_code, r.json()["error"]) == (401, "session_revoked")
    r = bearer(second["access"]).get("/api/auth/me")
    assert (r.status_code, r.json()["error"]) == (401, "session_revoked")
    assert AuthSession.objects.get(user=user).revoked_reason == "refresh_reuse"


def test_reuse_revokes_only_that_family(make_user):
    user = make_user()
    laptop, phone = start_session(user), start_session(user)
    refresh(laptop.refresh)
    refresh(laptop.refresh)  # reuse on the laptop session
    assert bearer(phone.access).get("/api/auth/me").status_code == 200
    assert refresh(phone.refresh).status_code == 200


def test_logout_revokes_session(make_user):
    pair = start_session(make_user())
    r = APIClient().post("/api/auth/logout", {"refresh": pair.refresh}, format="json")
    assert r.status_code == 204
    assert bearer(pair.access).get("/api/auth/me").status_code == 401
    assert refresh(pair.refresh).json()["error"] == "session_revoked"


@pytest.mark.parametrize(
    "body", [{}, {"refresh": 5}, {"refresh": "abc"}, {"refresh": "abc", "extra": 1}]
)
def test_bad_refresh_requests_are_4xx(body):
    r = APIClient().post("/api/auth/refresh", body, format="json")
    assert r.status_code in {400, 401}
    assert "error" in r.json()


def test_demo_login_is_absent_outside_demo_mode(settings):
    settings.DEMO_MODE = False
    r = APIClient().post("/api/auth/demo-login", {"email": "a@b.test"}, format="json")
    assert r.status_code == 404


def test_demo_login_creates_customers_and_signs_in_staff(settings, make_user):
    settings.DEMO_MODE = True
    r = APIClient().post(
        "/api/auth/demo-login", {"email": "New.Person@Example.test"}, format="json"
    )
    assert r.status_code == 200
    user = User.objects.get(email="new.person@example.test")
    assert user.role == "customer"
    assert user.customer_profile is not None
    assert bearer(r.json()["access"]).get("/api/auth/me").json()["email"] == user.email

    agent = make_user("agent", email="agent.zed@example.test")
    r = APIClient().post("/api/auth/demo-login", {"email": agent.email}, format="json")
    me = bearer(r.json()["access"]).get("/api/auth/me").json()
    assert (me["id"], me["role"]) == (agent.pk, "agent")

    for bad in [{"email": "nope"}, {"email": 3}, {}, {"email": "a@b.test", "role": "admin"}]:
        r = APIClient().post("/api/auth/demo-login", bad, format="json")
        assert r.status_code == 400, bad


def test_inactive_user_cannot_use_tokens(make_user):
    user = make_user()
    pair = start_session(user)
    user.is_active = False
    user.save()
    assert bearer(pair.access).get("/api/auth/me").json()["error"] == "user_inactive"
    assert refresh(pair.refresh).json()["error"] == "user_inactive"
