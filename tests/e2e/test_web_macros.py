"""Macros, saved views and formatted messages in headless Chromium (issue 20, ADR 0046),
with axe-core over every page opened (0 serious or critical violations).

The customer's page runs under the real Content-Security-Policy (no ``bypass_csp``): the
hostile messages must stay inert there too.
"""

# The fixtures are imported from test_web.py, and tests name them as parameters (F811).
# ruff: noqa: F811

from __future__ import annotations

import re
import uuid
from typing import Any

from tests.conftest import LiveServer
from tests.e2e.test_web import (  # noqa: F401  (fixtures shared with the web tests)
    DESKTOP,
    TIMEOUT_MS,
    agent,
    browser,
    customer_email,
    expect,
    shot,
    sign_in,
    web_server,
)
from tests.e2e.test_web_workspace import (  # noqa: F401  (second_agent: a fixture)
    accessible,
    create_ticket,
    open_page,
    second_agent,
)

HOSTILE = [
    '<img src=x onerror="window.__xss = 1">',
    "[click me](javascript:window.__xss=2)",
    "<script>window.__xss = 3</script>",
]


def test_an_agent_answers_with_a_macro_by_keyboard_and_its_changes_follow(
    agent: Any, second_agent: Any, browser: Any, web_server: LiveServer, shot: Any
) -> None:
    word = uuid.uuid4().hex[:8]
    email = customer_email()
    name = email.split("@")[0]

    # The customer writes under the real CSP, hostile text included.
    customer = browser.new_context(viewport=DESKTOP, base_url=web_server.url).new_page()
    customer.set_default_timeout(TIMEOUT_MS)
    dialogs: list[str] = []
    customer.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    customer.goto("/")
    sign_in(customer, email)
    path = create_ticket(customer, f"Toner empty {word}", "The printer says toner")
    for text in HOSTILE:
        customer.get_by_label("Reply").fill(text)
        customer.get_by_role("button", name="Send reply").click()
        expect(customer.get_by_test_id("public-message").last).to_contain_text(
            text.split("(")[0][:12]
        )

    # The agent keeps a personal macro.
    desk = open_page(browser, web_server)
    sign_in(desk, agent.email)
    desk.get_by_role("link", name="Macros").click()
    expect(desk.get_by_role("heading", name="Macros", level=1)).to_be_visible()
    desk.get_by_label("Name").fill(f"Toner fixed {word}")
    desk.get_by_label("Reply text").fill(
        "Hi {{customer.name}}, **new toner** is on its way: see https://example.com/toner"
        "\n\n- shake it\n- put it in"
    )
    desk.get_by_label("Then set status").select_option("resolved")
    desk.get_by_label("Add tags (comma-separated)").fill("toner")
    desk.get_by_label("Assign the ticket to whoever applies it").check()
    desk.get_by_role("button", name="Create macro").click()
    expect(desk.get_by_test_id("macro-list")).to_contain_text(f"Toner fixed {word}")
    accessible(desk, "macros page")

    # On the ticket: Alt+M from the reply box opens the macro menu; Enter applies it.
    desk.goto(path)
    expect(desk.get_by_test_id("ticket-subject")).to_have_text(f"Toner empty {word}")
    # Collision detection: another agent opening the ticket shows as viewing it.
    other = open_page(browser, web_server)
    sign_in(other, second_agent.email)
    other.goto(path)
    expect(desk.get_by_test_id("viewing-indicator")).to_have_text(
        f"{second_agent.first_name or second_agent.email} is viewing"
    )
    other.context.close()
    reply = desk.get_by_label("Reply", exact=True)
    menu = desk.get_by_label("Macro", exact=True)
    expect(menu).to_be_visible()  # once the macros have loaded
    reply.focus()
    reply.press("Alt+m")
    expect(menu).to_be_focused()
    menu.select_option(label=f"Toner fixed {word} (personal)")
    menu.press("Enter")
    expect(reply).to_have_value(re.compile(rf"^Hi {re.escape(name)}, \*\*new toner\*\*"))
    expect(reply).to_be_focused()
    changes = desk.get_by_test_id("macro-changes")
    expect(changes).to_contain_text("assign to")
    expect(changes).to_contain_text("add tag toner")
    expect(changes).to_contain_text("status Resolved")
    accessible(desk, "ticket with a macro applied")
    reply.press("End")
    reply.type(" Thanks!")  # the agent edits the text before sending
    reply.press("Control+Enter")
    expect(desk.get_by_test_id("macro-report")).to_have_text(re.compile(r"3 of 3 changes done\.$"))
    expect(desk.locator(".ticket-header").get_by_test_id("status-badge")).to_contain_text(
        "Resolved"
    )

    # The reply is formatted by the server; the customer sees it live, links open safely.
    sent = customer.get_by_test_id("public-message").filter(has_text="new toner")
    expect(sent.locator(".bubble-body strong")).to_have_text("new toner")
    expect(sent.locator(".bubble-body li")).to_have_count(2)
    link = sent.get_by_role("link", name="https://example.com/toner")
    expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
    expect(link).to_have_attribute("target", "_blank")
    expect(sent).to_contain_text("Thanks!")
    # The hostile messages are text: no image, no script ran, no javascript: link.
    thread = customer.locator(".bubble-body")
    expect(thread.locator("img")).to_have_count(0)
    expect(thread.locator("script")).to_have_count(0)
    expect(customer.locator('a[href^="javascript"]')).to_have_count(0)
    customer.reload()
    expect(customer.get_by_test_id("public-message").first).to_be_visible()
    assert customer.evaluate("window.__xss === undefined")
    assert dialogs == []
    shot(desk, "macro-applied")


def test_saved_views_come_back_with_their_counts(
    agent: Any, browser: Any, web_server: LiveServer
) -> None:
    word = uuid.uuid4().hex[:6]
    desk = open_page(browser, web_server)
    sign_in(desk, agent.email)
    desk.goto("/tickets")
    views = desk.get_by_test_id("views")
    expect(views.get_by_role("button", name=re.compile("^All tickets"))).to_be_visible()
    desk.get_by_label("Status").select_option("open")
    desk.get_by_label("Save these filters as").fill(f"Open {word}")
    desk.get_by_role("button", name="Save view").click()
    expect(desk.get_by_test_id("save-filters-report")).to_contain_text(f"Saved “Open {word}”")
    saved = views.get_by_role("button", name=re.compile(rf"^Open {word} \d+$"))
    expect(saved).to_be_visible()
    accessible(desk, "ticket list with a saved view")

    desk.get_by_label("Status").select_option("")  # filters changed: the saved view is off
    expect(saved).to_have_attribute("aria-pressed", "false")
    saved.click()
    expect(saved).to_have_attribute("aria-pressed", "true")
    expect(desk.get_by_label("Status")).to_have_value("open")
    desk.reload()  # stored on the server, not in the page
    views.get_by_role("button", name=f"Delete saved view Open {word}").click()
    expect(saved).to_have_count(0)
