"""The web app in headless Chromium against a real server: a customer and an agent work a
ticket live in two browser contexts; search, history, notifications; isolation of customers.

The server is started here (after ``web/dist`` is built, so WhiteNoise serves it) on the test
database, like ``make run`` serves it. Chromium is Debian's (``/usr/bin/chromium``), driven by
Python ``playwright``, which downloads nothing. Set ``DESKSTREAM_SCREENSHOTS_DIR`` (e.g.
``docs/screenshots``) to keep the screenshots of each main page.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer, create_user, start_server
from tests.support.wait import wait_until

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

CHROMIUM = os.environ.get("DESKSTREAM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 20_000
SEARCH = "Search tickets, messages and customers"
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def web_server(django_db_setup: Any, django_db_blocker: Any) -> Iterator[LiveServer]:
    from infra.server.webapp import ensure_built

    problem = ensure_built()
    if problem:
        pytest.fail(f"the web app could not be built: {problem}")
    server = start_server()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def agent(django_db_setup: Any, django_db_blocker: Any) -> Any:
    """A committed agent, created before the browser starts: Django refuses ORM calls made
    while Playwright's sync API (an event loop in this thread) is running."""
    with django_db_blocker.unblock():
        return create_user("agent")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (make test does this)")
    with playwright_sync.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def shot(tmp_path: Path) -> Callable[..., None]:
    folder = Path(os.environ.get("DESKSTREAM_SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str, toasts: bool = False) -> None:
        # Toasts would hide the page (the agent's desk shows one on purpose).
        style = None if toasts else page.add_style_tag(content=".toasts { display: none; }")
        page.wait_for_timeout(300)  # let the last frame paint (fonts, live updates)
        page.screenshot(path=str(folder / f"{name}.png"))
        if style is not None:
            style.evaluate("el => el.remove()")

    return take


def open_page(browser: Any, server: LiveServer, viewport: dict[str, int] = DESKTOP) -> Any:
    context = browser.new_context(viewport=viewport, base_url=server.url)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto("/")
    return page


def sign_in(page: Any, email: str) -> None:
    expect(page.get_by_role("heading", name="Sign in to Deskstream")).to_be_visible()
    page.get_by_label("E-mail").fill(email)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    # Live updates are on once the one WebSocket is authenticated.
    expect(page.get_by_test_id("connection")).to_have_class(re.compile("connection-open"))


def customer_email() -> str:
    return f"web-{uuid.uuid4().hex[:10]}@example.test"


def test_customer_and_agent_work_a_ticket_live(
    agent: Any, browser: Any, web_server: LiveServer, shot: Any
) -> None:
    customer = open_page(browser, web_server)
    shot(customer, "sign-in")
    sign_in(customer, customer_email())
    expect(customer.get_by_role("heading", name="New ticket")).to_be_visible()

    desk = open_page(browser, web_server)
    sign_in(desk, agent.email)
    unassigned = desk.get_by_test_id("unassigned")
    expect(unassigned).to_be_visible()

    # Client-side validation: no subject, no request.
    customer.get_by_role("button", name="Create ticket").click()
    expect(customer.get_by_text("Enter a subject.")).to_be_visible()

    word = uuid.uuid4().hex[:8]
    subject = f"Printer on fire {word}"
    customer.get_by_label("Subject").fill(subject)
    customer.get_by_label("Description").fill("Smoke everywhere on floor 2")
    # The priority is staff's to set unless an admin lets customers choose it.
    expect(customer.get_by_label("Priority", exact=True)).to_have_count(0)
    customer.get_by_role("button", name="Create ticket").click()
    expect(customer.get_by_test_id("ticket-subject")).to_have_text(subject)
    ticket_path = re.sub(r"^https?://[^/]+", "", customer.url)
    assert re.fullmatch(r"/tickets/[0-9a-f-]{36}", ticket_path), ticket_path

    # The agent's unassigned list shows the new ticket without a reload.
    expect(unassigned.get_by_role("link", name=subject)).to_be_visible()
    expect(desk.get_by_test_id("toasts")).to_contain_text(subject)
    shot(desk, "agent-dashboard", toasts=True)
    unassigned.get_by_role("link", name=subject).click()
    expect(desk.get_by_test_id("ticket-subject")).to_have_text(subject)
    desk.get_by_role("button", name="Assign to me").click()
    expect(desk.get_by_test_id("assign-select")).to_have_value(str(agent.pk))
    expect(customer.get_by_test_id("status-badge")).to_have_text("Assigned")

    # Typing reaches the customer, then the reply and the status change arrive live.
    desk.get_by_label("Reply").press_sequentially("Which printer is it?", delay=60)
    expect(customer.get_by_test_id("typing-indicator")).to_contain_text("is typing")
    desk.get_by_role("button", name="Send reply").click()
    thread = customer.locator(".messages")
    expect(thread.get_by_text("Which printer is it?")).to_be_visible()

    desk.get_by_label("Internal note", exact=True).check()
    desk.get_by_label("Internal note (staff only)").fill(f"VIP customer {word}")
    desk.get_by_role("button", name="Add note").click()
    expect(desk.get_by_test_id("internal-note")).to_contain_text(f"VIP customer {word}")
    desk.get_by_test_id("status-select").select_option("in_progress")
    desk.get_by_role("button", name="Apply status").click()
    expect(customer.get_by_test_id("status-badge")).to_have_text("In progress")
    desk.get_by_test_id("status-select").select_option("waiting_on_customer")
    desk.get_by_role("button", name="Apply status").click()
    expect(customer.get_by_test_id("status-badge")).to_have_text("Waiting on customer")
    expect(customer.get_by_test_id("internal-note")).to_have_count(0)
    expect(customer.get_by_test_id("unread-count")).to_be_visible()
    shot(desk, "ticket-agent")

    # The customer answers; that moves the ticket back to In progress for the agent.
    customer.get_by_label("Reply").fill("The big one next to the kitchen")
    customer.get_by_role("button", name="Send reply").click()
    expect(desk.locator(".messages").get_by_text("The big one next to the kitchen")).to_be_visible()
    expect(desk.get_by_test_id("status-badge")).to_have_text("In progress")
    shot(customer, "ticket-customer")

    # Notification centre.
    customer.get_by_test_id("notification-bell").click()
    panel = customer.get_by_role("region", name="Notifications")
    expect(panel).to_contain_text("New reply")
    shot(customer, "notifications")
    customer.keyboard.press("Escape")

    # Search finds it, grouped.
    customer.get_by_label(SEARCH).fill(word)
    customer.get_by_label(SEARCH).press("Enter")
    hits = customer.get_by_test_id("search-tickets")
    expect(hits.get_by_role("link", name=subject)).to_be_visible()
    desk.get_by_label(SEARCH).fill(word)
    desk.get_by_label(SEARCH).press("Enter")
    expect(desk.get_by_test_id("search-messages")).to_contain_text("VIP customer")
    shot(desk, "search")

    # History, and the ticket as it was at version 1.
    customer.goto(f"{ticket_path}/history")
    expect(customer.get_by_test_id("timeline")).to_contain_text("Opened")
    customer.get_by_role("button", name="View as of version 1").click()
    as_of = customer.get_by_test_id("as-of")
    expect(as_of.get_by_test_id("status-badge")).to_have_text("Open")
    expect(as_of).to_contain_text("As of version 1")
    shot(customer, "history")

    # The customer's dashboard lists it; and the same on a phone-width screen.
    customer.goto("/tickets")
    expect(customer.get_by_test_id("ticket-list").get_by_role("link", name=subject)).to_be_visible()
    shot(customer, "customer-dashboard")
    phone = customer.context.new_page()
    phone.set_viewport_size(PHONE)
    phone.goto(ticket_path)
    expect(phone.get_by_test_id("ticket-subject")).to_have_text(subject)
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways on a phone: {width}px"
    shot(phone, "ticket-phone")

    # Another customer cannot open it.
    stranger = open_page(browser, web_server)
    sign_in(stranger, customer_email())
    stranger.goto(ticket_path)
    expect(stranger.get_by_role("alert")).to_contain_text("Not found")
    expect(stranger.get_by_text(subject)).to_have_count(0)
    for page in (customer, desk, stranger):
        page.context.close()


def test_client_routes_and_assets_are_served(web_server: LiveServer) -> None:
    with web_server.client() as http:
        index = http.get(f"/tickets/{uuid.uuid4()}")
        assert index.status_code == 200
        assert index.headers["cache-control"] == "no-cache"
        script = re.search(r'src="(/assets/[^"]+\.js)"', index.text)
        assert script, index.text
        asset = http.get(script.group(1))
        assert asset.status_code == 200
        assert "immutable" in asset.headers["cache-control"]
        icon = re.search(r'rel="icon"[^>]*href="(/[^"]+)"', index.text)
        assert icon, index.text  # the page names its icon: no browser asks for /favicon.ico
        served = http.get(icon.group(1))
        assert served.status_code == 200
        assert served.headers["content-type"].startswith("image/svg+xml")
        assert http.get("/api/nope").headers["content-type"].startswith("application/json")


def test_sign_in_page_learns_the_methods_on_offer(db: Any, settings: Any) -> None:
    """``GET /api/auth/providers``. (Requesting ``db`` here also makes pytest-django create the
    test database when this module runs alone: it sets up only what collected tests ask for.)"""
    from rest_framework.test import APIClient

    from infra.auth.providers import BACKENDS, Provider

    settings.DEMO_MODE = False
    assert APIClient().get("/api/auth/providers").json() == {"demo": False, "providers": []}
    settings.DEMO_MODE = True
    settings.SOCIAL_PROVIDERS = [
        Provider("oidc", "Acme SSO", BACKENDS["oidc"], {"KEY": "id", "SECRET": "not shown"})
    ]
    assert APIClient().get("/api/auth/providers").json() == {
        "demo": True,
        "providers": [{"id": "oidc", "name": "Acme SSO", "url": "/api/auth/login/oidc"}],
    }


# Records every Content-Security-Policy violation of the page, from before its first script.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(e.effectiveDirective);
});
"""


def test_the_content_security_policy_blocks_an_injected_inline_script(
    browser: Any, web_server: LiveServer
) -> None:
    context = browser.new_context(viewport=DESKTOP, base_url=web_server.url)
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in to Deskstream")).to_be_visible()
    page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.__injected = true;";
          document.body.appendChild(script);
          const holder = document.createElement("div");
          holder.innerHTML = '<img src="data:," onerror="window.__injected = true">';
          document.body.appendChild(holder);
        }"""
    )
    page.wait_for_function("window.__violations.length >= 2")
    assert sorted(page.evaluate("window.__violations")) == ["script-src-attr", "script-src-elem"]
    assert page.evaluate("window.__injected") is None
    context.close()


def test_the_app_and_the_api_docs_run_under_the_policy(
    browser: Any, web_server: LiveServer
) -> None:
    context = browser.new_context(viewport=DESKTOP, base_url=web_server.url)
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.goto("/")
    sign_in(page, customer_email())
    assert page.evaluate("window.__violations") == []
    page.goto("/api/docs/")
    expect(page.locator(".opblock").first).to_be_visible()
    assert page.evaluate("window.__violations") == []
    # The recorder sees what the policy refuses: an inline script injected here is one.
    page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.__injected = true;";
          document.body.appendChild(script);
        }"""
    )
    page.wait_for_function("window.__violations.length > 0")
    assert page.evaluate("window.__violations") == ["script-src-elem"]
    assert page.evaluate("window.__injected") is None
    context.close()


def test_tokens_stay_out_of_reach_of_scripts_and_a_reload_keeps_the_session(
    browser: Any, web_server: LiveServer
) -> None:
    page = open_page(browser, web_server)
    sign_in(page, customer_email())
    storage = page.evaluate("JSON.stringify({...localStorage})")
    assert storage == '{"deskstream.session":"1"}'  # no access or refresh token
    assert "deskstream_refresh" not in page.evaluate("document.cookie")  # HttpOnly
    cookies = {c["name"]: c for c in page.context.cookies()}
    refresh = cookies["deskstream_refresh"]
    assert (refresh["httpOnly"], refresh["sameSite"], refresh["path"]) == (
        True,
        "Strict",
        "/api/auth/",
    )
    # A reload (the access token was in memory only) and a second tab: still signed in.
    page.reload()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    second = page.context.new_page()
    second.goto("/")
    expect(second.get_by_role("button", name="Sign out")).to_be_visible()
    # Signing out in one tab signs out the other, and ends the session on the server.
    second.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to Deskstream")).to_be_visible()
    # The first tab shows the sign-in page as soon as the second says it signed out; the
    # cookie goes with the sign-out request's answer, which may come a moment later.
    wait_until(lambda: "deskstream_refresh" not in {c["name"] for c in page.context.cookies()}, 20)
    page.reload()
    expect(page.get_by_role("heading", name="Sign in to Deskstream")).to_be_visible()
    page.context.close()


def tiny_png() -> bytes:
    """A real 2x2 red PNG, so the browser can decode the preview."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_a_customer_attaches_files_scanned_and_served_from_s3(
    agent: Any, browser: Any, tmp_path: Path
) -> None:
    """A real server on S3 (moto_server) and clamd: the customer creates a ticket with an
    image and the EICAR test file; the image is previewed through its signed link, EICAR is
    blocked; a reply's file reaches the agent; a link does not serve another customer."""
    import base64

    import boto3

    from tests.support.eicar import EICAR

    endpoint = os.environ.get("DESKSTREAM_S3_ENDPOINT")
    clamd = os.environ.get("DESKSTREAM_CLAMD_ADDRESS")
    if not (endpoint and clamd):
        pytest.skip("run through scripts/with_services.py (moto_server and clamd)")
    bucket = f"web-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="k",
        aws_secret_access_key="s",
    ).create_bucket(Bucket=bucket)  # fmt: skip
    from infra.server.webapp import ensure_built

    problem = ensure_built()
    if problem:
        pytest.fail(f"the web app could not be built: {problem}")
    server = start_server(
        {
            "DESKSTREAM_ATTACHMENT_STORAGE": "s3",
            "DESKSTREAM_S3_BUCKET": bucket,
            "DESKSTREAM_S3_REGION": "us-east-1",
            "DESKSTREAM_S3_ACCESS_KEY": "k",
            "DESKSTREAM_S3_SECRET_KEY": "s",
            "DESKSTREAM_ATTACHMENT_KEY": base64.b64encode(os.urandom(32)).decode(),
        }
    )
    try:
        (tmp_path / "screen.png").write_bytes(tiny_png())
        (tmp_path / "eicar.txt").write_bytes(EICAR)
        customer = open_page(browser, server)
        sign_in(customer, customer_email())
        subject = f"Screen broken {uuid.uuid4().hex[:8]}"
        customer.get_by_label("Subject").fill(subject)
        customer.get_by_label("Attachments").set_input_files(
            [str(tmp_path / "screen.png"), str(tmp_path / "eicar.txt")]
        )
        expect(customer.get_by_role("img", name="Preview of screen.png")).to_be_visible()
        customer.get_by_role("button", name="Create ticket").click()
        expect(customer.get_by_test_id("ticket-subject")).to_have_text(subject)
        files = customer.get_by_role("list", name="Ticket attachments")
        preview = files.get_by_role("img", name="Preview of screen.png")
        expect(preview).to_be_visible()
        # The preview came through the signed link, decrypted: the browser decoded the PNG.
        customer.wait_for_function(
            "img => img.complete && img.naturalWidth === 2", arg=preview.element_handle()
        )
        expect(files.get_by_text("Blocked: the virus scanner found malware")).to_be_visible()
        expect(files.get_by_role("link", name="eicar.txt")).to_have_count(0)
        link = files.get_by_role("link", name="screen.png", exact=True).get_attribute("href")
        assert link is not None
        assert link.startswith("/api/attachments/"), link

        # A reply with a file: the agent sees it on the message.
        customer.get_by_label("Reply").fill("Here is the log")
        (tmp_path / "log.txt").write_text("error 42\n")
        customer.get_by_label("Attach files").set_input_files(str(tmp_path / "log.txt"))
        customer.get_by_role("button", name="Send reply").click()
        ticket_path = re.sub(r"^https?://[^/]+", "", customer.url)
        desk = open_page(browser, server)
        sign_in(desk, agent.email)
        desk.goto(ticket_path)
        message = desk.locator(".messages").get_by_test_id("public-message")
        expect(message.get_by_role("link", name="log.txt", exact=True)).to_be_visible()

        # The customer's link works for the customer, not for a stranger's browser session
        # (the link names its user: another customer's own link to it does not exist).
        with server.client() as http:
            assert http.get(link).content == tiny_png()
            forged = re.sub(r"u=\d+", f"u={agent.pk}", link)
            assert http.get(forged).status_code == 403
        for page in (customer, desk):
            page.context.close()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def admin(django_db_setup: Any, django_db_blocker: Any) -> Any:
    """A committed admin, made in a thread of its own: this one may run Playwright's loop."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    def make() -> Any:
        try:
            return create_user("admin")
        finally:
            connections.close_all()

    with django_db_blocker.unblock(), ThreadPoolExecutor(1) as pool:
        return pool.submit(make).result()


DRAFT_DEFAULTS = {"enabled": True, "model": "", "per_agent": 20, "global": 300}


def drafts_on(server: LiveServer, admin_email: str) -> None:
    """The default draft settings (the schema fuzzing may have changed them)."""
    with server.client(demo_token(server, admin_email)) as http:
        r = http.put("/api/settings/drafts", json={**DRAFT_DEFAULTS, "window_seconds": 60})
        assert r.status_code == 200, r.text


def demo_token(server: LiveServer, email: str) -> str:
    with server.client() as http:
        r = http.post("/api/auth/demo-login", json={"email": email})
        assert r.status_code == 200, r.text
        return str(r.json()["access"])


def test_the_agent_drafts_a_reply_with_the_ai_panel_edits_and_sends_it(
    agent: Any, admin: Any, browser: Any, web_server: LiveServer
) -> None:
    """No model configured (``make run``'s default): the panel's draft comes from the reply
    that resolved a similar ticket; it streams, the agent edits it, inserts it into the reply
    box and sends it; the reply names the draft. The customer never sees the panel."""
    drafts_on(web_server, admin.email)
    topic = "zq" + uuid.uuid4().hex[:10]
    staff = demo_token(web_server, agent.email)
    customer_mail = customer_email()
    customer = demo_token(web_server, customer_mail)
    with web_server.client(customer) as http:
        past = http.post("/api/tickets", json={"subject": f"Router {topic} blinks red"}).json()
        now = http.post("/api/tickets", json={"subject": f"My router {topic} is red"}).json()
    with web_server.client(staff) as http:
        reply = f"Hello,\n\nPlease hold the {topic} reset button for ten seconds.\n\nCheers,\nBo"
        assert http.post(f"/api/tickets/{past['id']}/messages", json={"body": reply}).is_success
        done = http.post(f"/api/tickets/{past['id']}/status", json={"status": "resolved"})
        assert done.is_success

    desk = open_page(browser, web_server)
    sign_in(desk, agent.email)
    desk.goto(f"/tickets/{now['id']}")
    panel = desk.get_by_test_id("draft-panel")
    draft = panel.get_by_test_id("draft-text")
    # The search projection may still be catching up: regenerate until the draft is there.
    for _ in range(20):
        panel.get_by_role("button", name=re.compile("Generate draft|Regenerate")).click()
        expect(panel.get_by_role("button", name="Regenerate")).to_be_enabled()
        if draft.count():
            break
        desk.wait_for_timeout(500)
    expect(draft).to_have_value(re.compile(f"Please hold the {topic} reset button"))
    expect(panel.get_by_text("From similar resolved tickets")).to_be_visible()
    draft.fill(draft.input_value().replace("ten seconds", "fifteen seconds"))
    panel.get_by_role("button", name="Insert into reply").click()
    box = desk.get_by_label("Reply")
    expect(box).to_have_value(re.compile("fifteen seconds"))
    desk.get_by_role("button", name="Send reply").click()
    thread = desk.locator(".messages").get_by_test_id("public-message")
    expect(thread.get_by_text(re.compile("fifteen seconds"))).to_be_visible()
    with web_server.client(staff) as http:
        events = http.get(f"/api/tickets/{now['id']}/history").json()["events"]
    sent = [e for e in events if e["type"] == "ReplySentFromDraft"]
    assert len(sent) == 1
    assert sent[0]["data"]["edit_distance"] == 4  # "ten" -> "fifteen"

    page = open_page(browser, web_server)
    sign_in(page, customer_mail)
    page.goto(f"/tickets/{now['id']}")
    expect(page.get_by_text(re.compile("fifteen seconds"))).to_be_visible()
    expect(page.get_by_test_id("draft-panel")).to_have_count(0)
    for p in (desk, page):
        p.context.close()
