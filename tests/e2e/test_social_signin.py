"""Social sign-in end to end: headless Chromium through the whole redirect flow, against a
real OpenID provider on 127.0.0.1 (the npm package ``oidc-provider``, started here from
``web/scripts/oidc-test-provider.mjs``), through social-auth's OpenID Connect backend.

The server runs out of demo mode with only that provider configured. Its development login
page takes any login name as the account's e-mail address; ``unverified.<...>`` is one the
provider has not verified. Checked: a new verified address becomes a customer; an invited
agent's address links to that agent; an unverified address and a cancelled consent come
back to the sign-in page with a message, and create nobody.
"""

from __future__ import annotations

import concurrent.futures
import os
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import ROOT, LiveServer, create_user, free_port, start_server
from tests.e2e.test_web import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, expect, playwright_sync

pytestmark = pytest.mark.slow

CLIENT_ID = "deskstream-e2e"
PROVIDER_NAME = "Test IdP"


def wait_for_port(port: int, proc: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/.well-known/openid-configuration", timeout=1)
            return
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the OpenID provider did not start (exit {proc.poll()})")
            time.sleep(0.1)


@pytest.fixture(scope="module")
def signin_server(django_db_setup: Any, django_db_blocker: Any) -> Iterator[LiveServer]:
    """The OpenID provider, then the API (out of demo mode) configured to use it."""
    from infra.server.webapp import ensure_built

    problem = ensure_built()
    if problem:
        pytest.fail(f"the web app could not be built: {problem}")
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: the OpenID test provider runs on Node.js 20+")
    secret = secrets.token_urlsafe(24)
    api_port, idp_port = free_port(), free_port()
    idp = subprocess.Popen(
        [node, "scripts/oidc-test-provider.mjs"],
        cwd=ROOT / "web",
        env={
            **os.environ,
            "OIDC_PORT": str(idp_port),
            "OIDC_CLIENT_ID": CLIENT_ID,
            "OIDC_CLIENT_SECRET": secret,
            "OIDC_REDIRECT_URIS": f"http://127.0.0.1:{api_port}/api/auth/complete/oidc",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(idp_port, idp)
        server = start_server(
            {
                "DESKSTREAM_DEMO": "0",
                "DESKSTREAM_SECRET_KEY": secrets.token_urlsafe(48),
                "DESKSTREAM_OIDC_ISSUER": f"http://127.0.0.1:{idp_port}",
                "DESKSTREAM_OIDC_CLIENT_ID": CLIENT_ID,
                "DESKSTREAM_OIDC_CLIENT_SECRET": secret,
                "DESKSTREAM_OIDC_NAME": PROVIDER_NAME,
            },
            port=api_port,
        )
        try:
            yield server
        finally:
            server.stop()
    finally:
        idp.terminate()
        idp.wait(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_sync.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def in_db(django_db_setup: Any, django_db_blocker: Any) -> Callable[[Callable[[], Any]], Any]:
    """Run ORM calls in a thread of their own: Django refuses them in a thread where
    Playwright's sync API runs its event loop."""

    def run(query: Callable[[], Any]) -> Any:
        def unblocked() -> Any:
            with django_db_blocker.unblock():
                from django.db import connection

                try:
                    return query()
                finally:
                    connection.close()

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(unblocked).result()

    return run


@pytest.fixture(scope="module")
def invited_agent(in_db: Callable[..., Any]) -> Any:
    """An agent an admin invited (a user with that address and role, never signed in)."""
    return in_db(lambda: create_user("agent", email=f"invited-{uuid.uuid4().hex[:8]}@example.test"))


def shot(page: Any, name: str) -> None:
    """A screenshot for the README when DESKSTREAM_SCREENSHOTS_DIR is set (as in test_web)."""
    folder = os.environ.get("DESKSTREAM_SCREENSHOTS_DIR")
    if folder:
        page.wait_for_timeout(300)  # let the last frame paint
        page.screenshot(path=f"{folder}/{name}.png")


def start_sign_in(browser: Any, server: LiveServer, screenshot: str | None = None) -> Any:
    context = browser.new_context(base_url=server.url)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in to Deskstream")).to_be_visible()
    expect(page.get_by_role("link", name=f"Continue with {PROVIDER_NAME}")).to_be_visible()
    expect(page.get_by_label("E-mail")).to_have_count(0)  # no demo sign-in form
    if screenshot:
        shot(page, screenshot)
    page.get_by_role("link", name=f"Continue with {PROVIDER_NAME}").click()
    expect(page.locator("input[name=login]")).to_be_visible()  # the provider's page
    return page


def log_in_at_provider(page: Any, email: str) -> None:
    page.locator("input[name=login]").fill(email)
    page.locator("input[name=password]").fill("any password")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()  # consent


def linked(email: str) -> list[tuple[str, str, str]]:
    from social_django.models import UserSocialAuth

    return [
        (s.provider, s.uid, s.user.role)
        for s in UserSocialAuth.objects.filter(user__email__iexact=email).select_related("user")
    ]


def test_a_new_verified_address_becomes_a_customer(
    browser: Any, signin_server: LiveServer, in_db: Callable[..., Any]
) -> None:
    # Out of demo mode: no demo form, and its endpoint is gone.
    assert httpx.post(f"{signin_server.url}/api/auth/demo-login", json={}).status_code == 404
    # The request to the provider carries state, nonce and a PKCE challenge (S256).
    start = httpx.get(f"{signin_server.url}/api/auth/login/oidc")
    assert start.status_code == 302
    query = parse_qs(urlsplit(start.headers["Location"]).query)
    assert {"state", "nonce", "code_challenge"} <= set(query)
    assert query["code_challenge_method"] == ["S256"]
    assert start.cookies["deskstream_signin"]  # the flow's server-side session
    email = f"new-{uuid.uuid4().hex[:8]}@example.test"
    page = start_sign_in(browser, signin_server, screenshot="sign-in-social")
    log_in_at_provider(page, email)
    expect(page.get_by_role("heading", name="New ticket")).to_be_visible()
    assert "signin_code" not in page.url  # the one-time code left the address bar
    expect(page.get_by_text(f"{email.split('@')[0]} Tester")).to_be_visible()
    # The session survives a reload: the refresh token is in its HttpOnly cookie.
    page.reload()
    expect(page.get_by_role("heading", name="New ticket")).to_be_visible()
    # Signed out and back in: the provider remembers the login and the consent, and the
    # linked account signs in its user (one link, one user).
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("link", name=f"Continue with {PROVIDER_NAME}").click()
    expect(page.get_by_role("heading", name="New ticket")).to_be_visible()
    page.context.close()
    assert in_db(lambda: linked(email)) == [("oidc", email, "customer")]


def test_an_invited_agent_links_by_verified_address(
    browser: Any, signin_server: LiveServer, invited_agent: Any, in_db: Callable[..., Any]
) -> None:
    page = start_sign_in(browser, signin_server)
    log_in_at_provider(page, invited_agent.email.upper())  # addresses match in any case
    expect(page.get_by_test_id("unassigned")).to_be_visible()  # the agent's desk
    page.context.close()
    assert in_db(lambda: linked(invited_agent.email)) == [
        ("oidc", invited_agent.email.upper(), "agent")
    ]


def test_unverified_address_and_cancelled_consent_are_refused(
    browser: Any, signin_server: LiveServer, in_db: Callable[..., Any]
) -> None:
    from infra.auth.models import User

    email = f"unverified.{uuid.uuid4().hex[:8]}@example.test"
    page = start_sign_in(browser, signin_server)
    log_in_at_provider(page, email)
    expect(page.get_by_test_id("signin-error")).to_have_text(
        f"Your e-mail address at {PROVIDER_NAME} is not verified. "
        "Verify it there, then sign in again."
    )
    assert "signin_error" not in page.url
    shot(page, "sign-in-social-error")
    page.context.close()
    assert not in_db(lambda: User.objects.filter(email__iexact=email).exists())

    page = start_sign_in(browser, signin_server)
    page.get_by_role("link", name="[ Cancel ]").click()
    expect(page.get_by_test_id("signin-error")).to_have_text(
        f"You cancelled the sign-in at {PROVIDER_NAME}."
    )
    expect(page.get_by_role("link", name=f"Continue with {PROVIDER_NAME}")).to_be_visible()
    page.context.close()
