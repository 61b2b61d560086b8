"""The agent's workspace (issue 20) in headless Chromium against a real server: deliberate
changes with undo, names instead of ids, the customer sidebar, drafts that survive the session,
one toast per change, the desk on a phone, the outage banner, lists, search, errors, and an
axe-core accessibility check of every page these tests open (0 serious or critical).

The server, the browser and the helpers are those of ``test_web.py``. Contexts here bypass the
Content-Security-Policy only so that axe-core (an inline script) can be injected; the policy
itself is tested in ``test_web.py``.
"""

# The fixtures are imported from test_web.py, and tests name them as parameters (F811).
# ruff: noqa: F811

from __future__ import annotations

import datetime as dt
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer, create_user
from tests.e2e.test_web import (  # noqa: F401  (fixtures shared with the web tests)
    DESKTOP,
    PHONE,
    TIMEOUT_MS,
    agent,
    browser,
    customer_email,
    expect,
    shot,
    sign_in,
    web_server,
)

AXE = Path(__file__).resolve().parents[2] / "web" / "node_modules" / "axe-core" / "axe.min.js"
# WCAG rules axe runs; "best-practice" rules (region, heading order) are advice, not defects.
AXE_RUN = """async () => {
  const result = await axe.run(document, {
    runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    resultTypes: ["violations"],
  });
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}"""


def accessible(page: Any, name: str) -> None:
    """axe-core over the page as it is now: no serious or critical violation."""
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: cd web && npm ci")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    violations = page.evaluate(AXE_RUN)
    assert violations == [], f"{name}: {violations}"


def open_page(browser: Any, server: LiveServer, viewport: dict[str, int] = DESKTOP) -> Any:
    context = browser.new_context(viewport=viewport, base_url=server.url, bypass_csp=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto("/")
    return page


def path_of(page: Any) -> str:
    return re.sub(r"^https?://[^/]+", "", page.url)


def focused_in_main(page: Any) -> bool:
    return bool(page.evaluate("!!document.activeElement?.closest('main')"))


def create_ticket(page: Any, subject: str, description: str = "") -> str:
    page.goto("/tickets")
    page.get_by_label("Subject").fill(subject)
    page.get_by_label("Description").fill(description or f"About {subject}")
    page.get_by_role("button", name="Create ticket").click()
    expect(page.get_by_test_id("ticket-subject")).to_have_text(subject)
    return path_of(page)


@pytest.fixture(scope="module")
def second_agent(django_db_setup: Any, django_db_blocker: Any) -> Any:
    with django_db_blocker.unblock():
        return create_user("agent")


def test_the_agent_works_a_ticket_deliberately_with_names_sidebar_drafts_and_history(
    agent: Any, second_agent: Any, browser: Any, web_server: LiveServer, shot: Any
) -> None:
    word = uuid.uuid4().hex[:8]
    email = customer_email()
    name = email.split("@")[0]
    customer = open_page(browser, web_server)
    accessible(customer, "sign-in")
    sign_in(customer, email)
    # Focus starts in the page after sign-in (defect 17), not on a button that went away.
    expect(customer.get_by_role("heading", name="New ticket")).to_be_visible()
    customer.wait_for_function("!!document.activeElement?.closest('main')")
    accessible(customer, "customer dashboard")
    earlier = create_ticket(customer, f"Earlier question {word}")
    path = create_ticket(customer, f"Invoice wrong {word}", "Charged twice for March")
    customer.wait_for_function("document.activeElement?.dataset.testid === 'ticket-subject'")
    accessible(customer, "ticket (customer)")

    # The second agent connects once (so the workload knows them), then leaves.
    other = open_page(browser, web_server)
    sign_in(other, second_agent.email)
    other.get_by_role("radio", name="Away").click()
    expect(other.get_by_role("radio", name="Away")).to_be_checked()
    other.get_by_role("radio", name="Online").click()
    expect(other.get_by_role("radio", name="Online")).to_be_checked()
    other.context.close()

    desk = open_page(browser, web_server)
    sign_in(desk, agent.email)
    desk.goto(path)
    expect(desk.get_by_test_id("ticket-subject")).to_have_text(f"Invoice wrong {word}")
    # Names, never ids (defect 4): the header, the thread and the customer sidebar.
    expect(desk.locator(".ticket-header")).to_contain_text(f"from {name}")
    expect(desk.locator(".ticket-header")).not_to_contain_text("customer #")
    sidebar = desk.get_by_test_id("customer-sidebar")
    expect(sidebar.get_by_test_id("customer-name")).to_have_text(name)
    expect(sidebar.get_by_role("link", name=email)).to_be_visible()
    expect(sidebar.get_by_test_id("other-tickets")).to_contain_text(f"Earlier question {word}")
    expect(sidebar.get_by_role("heading", name="Similar tickets")).to_be_visible()
    # SLA badge with a live countdown (feature): the first reply is due.
    expect(desk.locator(".ticket-header").get_by_test_id("sla-badge")).to_contain_text(
        re.compile(r"First reply due in \d+")
    )

    # Keyboard: `?` lists the shortcuts, `a` assigns to me.
    desk.locator("body").press("?")
    overlay = desk.get_by_role("dialog", name="Keyboard shortcuts")
    expect(overlay).to_contain_text("Assign to me")
    accessible(desk, "shortcuts overlay")
    shot(desk, "shortcuts")
    desk.keyboard.press("Escape")
    expect(overlay).to_have_count(0)
    desk.locator("body").press("a")
    expect(desk.get_by_test_id("status-badge")).to_have_text("Assigned")
    expect(desk.get_by_test_id("toasts")).to_contain_text("Assigned to")
    expect(desk.get_by_test_id("assignee")).to_have_text(f"Agent: {agent.first_name}")

    # The assign menu says what presence says (defect 12): the second agent is not connected.
    assign = desk.get_by_test_id("assign-select")
    other_option = assign.locator("option", has_text=second_agent.first_name)
    expect(other_option).to_contain_text("(offline")

    # A stray arrow key on the status menu changes nothing (defect 1); Apply does, with Undo.
    status = desk.get_by_test_id("status-select")
    status.focus()
    desk.keyboard.press("ArrowDown")
    status.select_option("in_progress")
    desk.wait_for_timeout(500)  # a change would have been sent at once before the fix
    expect(customer.get_by_test_id("status-badge")).to_have_text("Assigned")
    expect(desk.get_by_test_id("status-badge")).to_have_text("Assigned")
    desk.get_by_role("button", name="Apply status").click()
    expect(customer.get_by_test_id("status-badge")).to_have_text("In progress")
    status.select_option("waiting_on_customer")
    desk.get_by_role("button", name="Apply status").click()
    expect(customer.get_by_test_id("status-badge")).to_have_text("Waiting on customer")
    waiting = desk.locator(".toast", has_text="Status changed to Waiting on customer")
    waiting.get_by_role("button", name="Undo").click()
    expect(customer.get_by_test_id("status-badge")).to_have_text("In progress")

    # Priority and tags (feature), and an internal note the customer's history must not show.
    desk.get_by_test_id("priority-select").select_option("high")
    desk.get_by_placeholder("Add a tag").fill("billing")
    desk.get_by_role("button", name="Add tag").click()
    expect(desk.get_by_test_id("tags")).to_contain_text("billing")
    desk.get_by_label("Internal note", exact=True).check()
    desk.get_by_label("Internal note (staff only)").fill(f"Refund approved {word}")
    desk.get_by_role("button", name="Add note").click()
    expect(desk.get_by_test_id("internal-note")).to_contain_text(f"Refund approved {word}")
    desk.get_by_label("Internal note", exact=True).uncheck()
    desk.reload()
    expect(desk.get_by_label("Priority: High")).to_be_visible()
    expect(desk.get_by_test_id("tags")).to_contain_text("billing")
    accessible(desk, "ticket (agent)")
    shot(desk, "ticket-agent-workspace")

    # A draft survives a reload and an ended session (defect 6).
    desk.get_by_label("Reply").fill(f"Draft for you {word}")
    desk.reload()
    expect(desk.get_by_label("Reply")).to_have_value(f"Draft for you {word}")
    desk.context.clear_cookies()
    desk.reload()
    expect(desk.get_by_test_id("session-ended")).to_contain_text("Your session ended")
    sign_in(desk, agent.email)
    desk.goto(path)
    expect(desk.get_by_label("Reply")).to_have_value(f"Draft for you {word}")
    desk.get_by_label("Reply").press("Control+Enter")
    expect(customer.locator(".messages")).to_contain_text(f"Draft for you {word}")
    expect(desk.get_by_label("Reply")).to_have_value("")

    # History with names, no policy names (defect 10); customers see no version gaps.
    desk.goto(f"{path}/history")
    timeline = desk.get_by_test_id("timeline")
    expect(timeline).to_contain_text(f"Assigned to {agent.first_name}")
    expect(timeline).to_contain_text(f"by {name}")
    expect(timeline).not_to_contain_text("#")
    expect(timeline).not_to_contain_text("least_loaded")
    accessible(desk, "history (agent)")
    customer.goto(f"{path}/history")
    steps = customer.get_by_test_id("timeline").locator("li strong")
    expect(steps.first).to_have_text("v1")
    numbers = [int(t.lstrip("v")) for t in steps.all_inner_texts()]
    assert numbers == list(range(1, len(numbers) + 1)), numbers
    expect(customer.get_by_test_id("timeline")).not_to_contain_text("Refund approved")

    # Closed tickets look closed (defect 9): no "agent is on it", no assignee menu.
    desk.goto(path)
    desk.get_by_test_id("status-select").select_option("resolved")
    desk.get_by_role("button", name="Apply status").click()
    expect(desk.get_by_test_id("status-badge")).to_have_text("Resolved")
    desk.get_by_test_id("status-select").select_option("closed")
    desk.get_by_role("button", name="Apply status").click()
    expect(desk.get_by_test_id("status-badge")).to_have_text("Closed")
    expect(desk.get_by_test_id("assign-select")).to_have_count(0)
    expect(desk.get_by_test_id("closed-note")).to_be_visible()
    customer.goto(path)
    expect(customer.get_by_test_id("assignee")).to_have_text("Closed")
    customer.goto(earlier)
    expect(customer.get_by_test_id("status-badge")).to_have_text("Open")
    for page in (customer, desk):
        page.context.close()


def test_one_toast_per_change_for_those_it_concerns_and_the_desk_on_a_phone(
    agent: Any, second_agent: Any, browser: Any, web_server: LiveServer
) -> None:
    word = uuid.uuid4().hex[:8]
    ada = open_page(browser, web_server)
    sign_in(ada, agent.email)
    ada.goto("/agent")
    bob = open_page(browser, web_server)
    sign_in(bob, second_agent.email)
    bob.goto("/agent")
    expect(bob.get_by_test_id("unassigned")).to_be_visible()
    customer = open_page(browser, web_server)
    sign_in(customer, customer_email())
    subject = f"Laptop will not boot {word}"
    path = create_ticket(customer, subject)
    ticket_id = path.rsplit("/", 1)[1]
    toast = f".toast:has(a[href='/tickets/{ticket_id}'])"
    expect(ada.locator(toast)).to_contain_text(f"New ticket: {subject}")
    expect(bob.locator(toast)).to_contain_text(f"New ticket: {subject}")
    accessible(ada, "desk")

    # Ada gives it to Bob: Bob gets one toast for it, Ada's "New ticket" toast goes (defect 3).
    ada.goto(path)
    ada.get_by_test_id("assign-select").select_option(str(second_agent.pk))
    ada.get_by_role("button", name="Apply assignment").click()
    expect(bob.locator(toast)).to_contain_text("assigned to you")
    expect(bob.locator(toast)).to_have_count(1)
    expect(ada.locator(toast)).to_have_count(0)
    # The toast never covers the reply box.
    bob.goto(path)
    bob.get_by_label("Reply").fill("On it")
    ada.get_by_test_id("status-select").select_option("in_progress")
    ada.get_by_role("button", name="Apply status").click()
    expect(bob.locator(".toast").first).to_be_visible()
    box = bob.get_by_label("Reply").bounding_box()
    for toast_box in [t.bounding_box() for t in bob.locator(".toast").all()]:
        assert toast_box is not None
        assert box is not None
        overlaps = not (
            toast_box["x"] + toast_box["width"] <= box["x"]
            or box["x"] + box["width"] <= toast_box["x"]
            or toast_box["y"] + toast_box["height"] <= box["y"]
            or box["y"] + box["height"] <= toast_box["y"]
        )
        assert not overlaps, (toast_box, box)

    # Going offline says what moves, and that going online does not bring it back (defect 2).
    bob.goto("/agent")
    bob.get_by_role("radio", name="Offline").click()
    warning = bob.get_by_test_id("offline-warning")
    expect(warning).to_contain_text("1 open ticket will move to other agents")
    expect(warning).to_contain_text("does not bring it back")
    accessible(bob, "offline warning")
    bob.get_by_role("button", name="Stay online").click()
    expect(bob.get_by_role("radio", name="Online")).to_be_checked()

    # On a phone: queue rows show the subject, the notification panel stays on screen (11).
    bob.set_viewport_size(PHONE)
    row = bob.get_by_test_id("my-queue").get_by_role("link", name=subject)
    expect(row).to_be_visible()
    shown = row.evaluate("el => el.scrollWidth <= el.clientWidth + 1")
    assert shown, "the subject is cut on a phone"
    bob.get_by_test_id("notification-bell").click()
    panel = bob.get_by_role("region", name="Notifications").bounding_box()
    assert panel is not None
    assert panel["x"] >= 0, panel
    assert panel["x"] + panel["width"] <= PHONE["width"], panel
    accessible(bob, "desk on a phone")
    for page in (ada, bob, customer):
        page.context.close()


def test_a_live_updates_outage_shows_a_banner(
    agent: Any, browser: Any, web_server: LiveServer
) -> None:
    context = browser.new_context(viewport=DESKTOP, base_url=web_server.url, bypass_csp=True)
    context.set_default_timeout(TIMEOUT_MS)
    state: dict[str, Any] = {"down": False, "sockets": []}

    def route(ws: Any) -> None:
        if state["down"]:
            ws.close()
            return
        ws.connect_to_server()
        state["sockets"].append(ws)

    context.route_web_socket(re.compile(r"/ws/"), route)
    page = context.new_page()
    page.goto("/")
    sign_in(page, customer_email())
    banner = page.get_by_test_id("outage-banner")
    expect(banner).to_have_count(0)
    state["down"] = True
    for ws in state["sockets"]:
        ws.close()
    expect(banner).to_contain_text("Live updates are interrupted")
    accessible(page, "outage banner")
    state["down"] = False
    expect(banner).to_have_count(0, timeout=40_000)
    context.close()


def test_lists_search_errors_and_the_missing_page(
    agent: Any, browser: Any, web_server: LiveServer, shot: Any
) -> None:
    word = uuid.uuid4().hex[:8]
    email = customer_email()
    customer = open_page(browser, web_server)
    sign_in(customer, email)
    desk = open_page(browser, web_server)
    sign_in(desk, agent.email)

    # The staff list is live and sortable, and shows the time it is sorted by (defect 7).
    desk.goto("/tickets")
    tickets = desk.get_by_test_id("ticket-list")
    expect(desk.get_by_role("heading", name="All tickets")).to_be_visible()
    expect(desk.get_by_role("navigation", name="Views")).to_be_visible()
    first = f"Printer jam {word}"
    path = create_ticket(customer, first)
    expect(tickets.get_by_role("link", name=first)).to_be_visible()
    expect(tickets.get_by_test_id("ticket-card").first).to_contain_text("opened")
    desk.get_by_label("Sort").select_option("-updated_at")
    expect(tickets.get_by_test_id("ticket-card").first).to_contain_text("updated")

    # Views with live counts, and bulk actions (features).
    views = desk.get_by_role("navigation", name="Views")
    unassigned = views.get_by_role("button", name=re.compile(r"^Unassigned \d+$"))
    mine = views.get_by_role("button", name=re.compile(r"^My open tickets \d+$"))
    before = int(unassigned.inner_text().split()[-1])
    mine_before = int(mine.inner_text().split()[-1])
    second = f"Scanner jam {word}"
    create_ticket(customer, second)
    expect(unassigned).to_have_text(f"Unassigned {before + 1}")
    unassigned.click()
    expect(unassigned).to_have_attribute("aria-pressed", "true")
    for subject in (first, second):
        tickets.get_by_role("checkbox", name=f"Select {subject}").check()
    bulk = desk.get_by_role("group", name="Bulk actions")
    expect(bulk).to_contain_text("2 selected")
    accessible(desk, "all tickets with a selection")
    shot(desk, "all-tickets-views")
    bulk.get_by_role("button", name="Assign to me").click()
    expect(bulk.get_by_test_id("bulk-report")).to_have_text("Assigned to you: 2 of 2 done.")
    expect(mine).to_have_text(f"My open tickets {mine_before + 2}")
    expect(unassigned).to_have_text(f"Unassigned {before - 1}")
    expect(tickets.get_by_role("link", name=first)).to_have_count(0)
    bulk.get_by_role("button", name="Clear selection").click()
    views.get_by_role("button", name=re.compile(r"^All tickets \d+$")).click()

    # "Created before" a day leaves that day out (defect 13).
    today = dt.date.today().isoformat()
    desk.get_by_label("Created before").fill(today)
    expect(tickets.get_by_role("link", name=first)).to_have_count(0)
    desk.get_by_role("button", name="Clear filters").click()
    desk.get_by_label("Created from").fill(today)
    expect(desk.get_by_test_id("ticket-list").get_by_role("link", name=first)).to_be_visible()

    # Search (defect 8): the box shows the query of the address, "More", filters, customers.
    with web_server.client() as http:
        token = http.post("/api/auth/demo-login", json={"email": agent.email}).json()["access"]
        ticket_id = path.rsplit("/", 1)[1]
        for n in range(11):
            answer = http.post(
                f"/api/tickets/{ticket_id}/messages",
                json={"body": f"Checked tray {n} {word}", "internal": False},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert answer.status_code == 201, answer.text
    desk.goto(f"/search?q={word}")
    expect(desk.get_by_label("Search tickets, messages and customers")).to_have_value(word)
    messages = desk.get_by_test_id("search-messages")
    expect(messages.locator(".search-hit")).to_have_count(10)
    messages.get_by_role("button", name="More messages").click()
    expect(messages.locator(".search-hit")).to_have_count(11)
    expect(desk.get_by_role("group", name="Filters")).to_be_visible()
    desk.get_by_label("Status").select_option("closed")
    expect(desk.get_by_test_id("search-tickets")).to_contain_text("No tickets found")
    accessible(desk, "search")
    name = email.split("@")[0]
    desk.goto(f"/search?q={name}")
    desk.get_by_test_id("search-customers").get_by_role("link").first.click()
    expect(desk.get_by_test_id("customer-filter")).to_contain_text(name)
    expect(desk.get_by_test_id("ticket-list").get_by_role("link", name=first)).to_be_visible()

    # A server error shows a friendly message with Retry, never the error page (defect 5).
    def fail(route: Any) -> None:
        route.fulfill(status=500, body="<h1>Server Error (500)</h1>", content_type="text/html")

    desk.route(re.compile(rf"/api/tickets/{ticket_id}(\?.*)?$"), fail)
    desk.goto(path)
    alert = desk.get_by_role("alert")
    expect(alert).to_contain_text("Something went wrong on our side")
    expect(desk.get_by_text("Server Error (500)")).to_have_count(0)
    desk.unroute(re.compile(rf"/api/tickets/{ticket_id}(\?.*)?$"))
    desk.get_by_role("button", name="Retry").click()
    expect(desk.get_by_test_id("ticket-subject")).to_have_text(first)

    # An unknown address: the app's page with a way on, and HTTP 404 (defect 14).
    response = desk.goto("/no-such-page")
    assert response is not None
    assert response.status == 404
    expect(desk.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(desk.get_by_role("link", name="Go to the desk")).to_be_visible()
    accessible(desk, "page not found")
    for page in (customer, desk):
        page.context.close()


def test_hashed_assets_are_served_compressed_and_cached_for_a_year(
    web_server: LiveServer,
) -> None:
    """Defect 16: the bundle was served uncompressed."""
    with web_server.client() as http:
        index = http.get("/")
        script = re.search(r'src="(/assets/[^"]+\.js)"', index.text)
        assert script, index.text
        plain = http.get(script.group(1), headers={"Accept-Encoding": "identity"})
        for encoding in ("br", "gzip"):
            asset = http.get(script.group(1), headers={"Accept-Encoding": encoding})
            assert asset.status_code == 200
            assert asset.headers["content-encoding"] == encoding
            assert int(asset.headers["content-length"]) < len(plain.content) / 2
            if encoding == "gzip":  # (httpx decodes gzip; brotli only with a brotli package)
                assert asset.content == plain.content
            assert "accept-encoding" in asset.headers["vary"].lower()
            assert "immutable" in asset.headers["cache-control"]
            assert "max-age=315360000" in asset.headers["cache-control"]
