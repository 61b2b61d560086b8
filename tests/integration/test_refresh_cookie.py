"""The web app's refresh token lives in an HttpOnly, Secure, SameSite=Strict cookie that only
the auth endpoints receive, never in a body script can read; refresh and logout by cookie
need the site's own Origin (CSRF). API clients keep sending the token in the body."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

COOKIE = "deskstream_refresh"
ORIGIN = {"HTTP_ORIGIN": "http://testserver"}


@pytest.fixture
def browser(settings: Any) -> APIClient:
    settings.DEMO_MODE = True
    return APIClient()


def sign_in(client: APIClient, email: str = "cookie@example.test") -> Any:
    r = client.post("/api/auth/demo-login", {"email": email, "cookie": True}, format="json")
    assert r.status_code == 200, r.content
    return r


def test_sign_in_sets_the_cookie_and_keeps_the_token_out_of_the_body(browser, settings):
    r = sign_in(browser)
    assert set(r.json()) == {"access", "token_type", "expires_in"}
    cookie = r.cookies[COOKIE]
    assert cookie.value
    assert cookie["httponly"] is True
    assert cookie["secure"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/api/auth/"
    assert int(cookie["max-age"]) == int(settings.JWT_REFRESH_TTL.total_seconds())


def test_the_secure_flag_can_be_off_for_plain_http_on_127_0_0_1(browser, settings):
    settings.REFRESH_COOKIE_SECURE = False
    assert sign_in(browser).cookies[COOKIE]["secure"] == ""


def test_refresh_by_cookie_rotates_it_and_answers_only_the_access_token(browser):
    first = sign_in(browser).cookies[COOKIE].value
    r = browser.post("/api/auth/refresh", {}, format="json", **ORIGIN)
    assert r.status_code == 200, r.content
    assert set(r.json()) == {"access", "token_type", "expires_in"}
    second = r.cookies[COOKIE].value
    assert second != first
    me = browser.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {r.json()['access']}")
    assert me.status_code == 200
    # The old cookie presented again is a reuse: the session is revoked.
    stale = APIClient()
    stale.cookies[COOKIE] = first
    reused = stale.post("/api/auth/refresh", {}, format="json", **ORIGIN)
    assert (reused.status_code, reused.json()["error"]) == (401, "refresh_reused")


@pytest.mark.parametrize("origin", [None, "http://evil.example", "null"])
def test_refresh_and_logout_by_cookie_need_the_sites_own_origin(browser, origin):
    sign_in(browser)
    headers = {} if origin is None else {"HTTP_ORIGIN": origin}
    for path in ("/api/auth/refresh", "/api/auth/logout"):
        r = browser.post(path, {}, format="json", **headers)
        assert r.status_code == 403
        assert r.json()["error"] == "csrf_failed"
    assert browser.post("/api/auth/refresh", {}, format="json", **ORIGIN).status_code == 200


def test_logout_by_cookie_ends_the_session_and_clears_the_cookie(browser):
    token = sign_in(browser).cookies[COOKIE].value
    r = browser.post("/api/auth/logout", {}, format="json", **ORIGIN)
    assert r.status_code == 204
    assert r.cookies[COOKIE].value == ""
    assert int(r.cookies[COOKIE]["max-age"]) == 0
    again = APIClient()
    again.cookies[COOKIE] = token
    r = again.post("/api/auth/refresh", {}, format="json", **ORIGIN)
    assert (r.status_code, r.json()["error"]) == (401, "session_revoked")


def test_without_cookie_or_body_token_refresh_is_a_400_naming_the_field(browser):
    r = browser.post("/api/auth/refresh", {}, format="json", **ORIGIN)
    assert r.status_code == 400
    assert list(r.json()["fields"]) == ["refresh"]
