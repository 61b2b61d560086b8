"""The admin's analytics dashboard in headless Chromium (issue 16): an admin opens it from the
menu, narrows it by filters that live in the URL, exports a chart as CSV, and watches the KPI
cards and the daily volume chart move without a reload when a customer opens a ticket and
when it is resolved; the customer's rating then shows in the satisfaction card and chart.

The server runs analytics the way ``make run`` does (chDB in a directory of its own, the
analytics projector in the server's process): the page reads what the projector wrote.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer, create_user, start_server
from tests.e2e.test_web import browser, expect, open_page, sign_in

__all__ = ["browser"]  # the module-scoped Chromium of test_web.py, used here as a fixture


@pytest.fixture(scope="module")
def analytics_server(
    django_db_setup: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    from infra.server.webapp import ensure_built

    problem = ensure_built()
    if problem:
        pytest.fail(f"the web app could not be built: {problem}")
    server = start_server(
        {
            "DESKSTREAM_ANALYTICS": "1",
            "DESKSTREAM_ANALYTICS_PATH": str(tmp_path_factory.mktemp("chdb") / "analytics"),
            "DESKSTREAM_CLICKHOUSE_URL": "",  # chDB, as under make run
        }
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def people(django_db_setup: Any, django_db_blocker: Any) -> dict[str, Any]:
    """An admin and a customer with their tokens, made before the browser starts (Django
    refuses ORM calls while Playwright's sync API runs in this thread)."""
    from command_api.application import get_application
    from infra.auth.tokens import start_session

    with django_db_blocker.unblock():
        admin = create_user("admin")
        customer = create_user("customer")
        return {
            "admin": admin,
            "admin_token": start_session(admin).access,
            "customer_token": start_session(customer).access,
            # The log's head: the server's analytics catch up with it before the counts are read.
            "head": get_application().recorder.max_notification_id() or 0,
        }


def card(page: Any, name: str) -> Any:
    return page.get_by_test_id(f"kpi-{name}").locator(".kpi-value")


def count(page: Any, name: str) -> int:
    text = card(page, name).inner_text()
    return int(text.replace(",", ""))


def last_day(page: Any) -> Any:
    """The daily volume chart's data row of the range's last day (today)."""
    return page.get_by_test_id("chart-daily").locator("table.chart-table tbody tr").last


def day_row(page: Any) -> list[str]:
    return [c.strip() for c in last_day(page).locator("td").all_inner_texts()]


def test_an_admin_filters_exports_and_watches_the_dashboard_move_live(
    people: dict[str, Any], analytics_server: LiveServer, browser: Any, tmp_path: Path
) -> None:
    api = analytics_server.url
    admin = httpx.Client(
        base_url=api, headers={"Authorization": f"Bearer {people['admin_token']}"}, timeout=30
    )
    # Earlier tests' tickets are in the log: wait until analytics hold them all, so the counts
    # read below move only by what this test does.
    for _ in range(30):
        r = admin.get("/api/analytics/open", params={"after": people["head"]})
        assert r.status_code == 200, r.text
        if "X-Deskstream-Stale" not in r.headers:
            break
    else:
        pytest.fail(f"analytics did not reach position {people['head']}")
    page = open_page(browser, analytics_server)
    sign_in(page, people["admin"].email)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Analytics").click()
    expect(page).to_have_url(re.compile(r"/admin/analytics$"))
    expect(page.get_by_role("heading", name="Analytics", exact=True)).to_be_visible()
    expect(card(page, "open")).to_have_text(re.compile(r"^[\d,]+$"))
    for chart in ("Daily volume", "Resolution-time distribution", "Backlog by agent"):
        expect(page.get_by_role("heading", name=chart)).to_be_visible()
    expect(page.get_by_role("heading", name="Status distribution over time")).to_be_visible()

    # Filters go to the URL, and a reload keeps them.
    page.get_by_role("checkbox", name="Urgent").check()
    page.get_by_label("Time zone").select_option("Asia/Tokyo")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"tz=Asia%2FTokyo.*priority=urgent"))
    page.reload()
    expect(page.get_by_role("checkbox", name="Urgent")).to_be_checked()
    expect(page.get_by_label("Time zone")).to_have_value("Asia/Tokyo")
    page.get_by_role("button", name="Reset").click()
    expect(page).not_to_have_url(re.compile(r"priority="))
    expect(page.get_by_role("checkbox", name="Urgent")).not_to_be_checked()

    # Live: a new ticket moves "open" and "created" without a reload (read once the cards show
    # the unfiltered figures, not the filtered ones standing in meanwhile)...
    expect(page.get_by_role("region", name="Key figures")).to_have_attribute("aria-busy", "false")
    opened, created = count(page, "open"), count(page, "created")
    # The charts move too: the daily volume's row for today (its data table, opened), read
    # once the chart shows the unfiltered figures (busy while the filtered ones stand in).
    expect(page.get_by_test_id("chart-daily")).to_have_attribute("aria-busy", "false")
    page.get_by_test_id("chart-daily").get_by_text("Data", exact=True).click()
    expect(last_day(page)).to_be_visible()
    day, day_created, day_resolved = day_row(page)
    customer = httpx.Client(
        base_url=api, headers={"Authorization": f"Bearer {people['customer_token']}"}, timeout=30
    )
    subject = f"Dashboard live {uuid.uuid4().hex[:8]}"
    r = customer.post("/api/tickets", json={"subject": subject, "description": "d"})
    assert r.status_code == 201, r.text
    ticket = r.json()["id"]
    expect(card(page, "open")).to_have_text(f"{opened + 1:,}")
    expect(card(page, "created")).to_have_text(f"{created + 1:,}")
    expect(last_day(page)).to_have_text(
        re.compile(rf"^{day}\s*{int(day_created) + 1}\s*{day_resolved}$")
    )

    # ... and so does its resolution (closed by an admin from an open status).
    resolved = count(page, "resolved")
    r = admin.post(f"/api/tickets/{ticket}/status", json={"status": "closed"})
    assert r.status_code == 200, r.text
    expect(card(page, "open")).to_have_text(f"{opened:,}")
    expect(card(page, "resolved")).to_have_text(f"{resolved + 1:,}")
    expect(last_day(page)).to_have_text(
        re.compile(rf"^{day}\s*{int(day_created) + 1}\s*{int(day_resolved) + 1}$")
    )

    # Every chart exports its data as CSV.
    daily = page.get_by_test_id("chart-daily")
    with page.expect_download() as download:
        daily.get_by_role("button", name="Export CSV").click()
    path = tmp_path / "daily.csv"
    download.value.save_as(path)
    assert download.value.suggested_filename.startswith("deskstream-daily-")
    lines = path.read_text().splitlines()
    assert lines[0] == "day,created,resolved"
    assert len(lines) == 31  # the 30 days to today, and the header
    assert sum(int(line.split(",")[1]) for line in lines[1:]) == created + 1

    # Satisfaction (CSAT): the customer rates the closed ticket; the card and the chart count
    # it (ratings are not on the queue stream: read after a reload, once analytics hold it).
    expect(page.get_by_role("heading", name="Customer satisfaction")).to_be_visible()
    rated = admin.get("/api/analytics/satisfaction").json()["data"]["ratings"]
    r = customer.post(f"/api/tickets/{ticket}/satisfaction", json={"rating": 5})
    assert r.status_code == 200, r.text
    position = r.json()["position"]
    for _ in range(30):
        r = admin.get("/api/analytics/satisfaction", params={"after": position})
        if "X-Deskstream-Stale" not in r.headers:
            break
    assert r.json()["data"]["ratings"] == rated + 1
    page.reload()
    satisfaction = page.get_by_test_id("kpi-satisfaction")
    expect(satisfaction).to_contain_text(f"{rated + 1:,} rated")
    expect(satisfaction.locator(".kpi-value")).to_have_text(re.compile(r"^\d\.\d\d / 5$"))
    chart = page.get_by_test_id("chart-satisfaction")
    chart.get_by_text("Data", exact=True).click()
    expect(chart.get_by_role("row", name=re.compile(rf"^All {rated + 1} \d"))).to_be_visible()
    customer.close()
    admin.close()


def test_the_dashboard_is_for_admins_only(
    people: dict[str, Any], analytics_server: LiveServer
) -> None:
    with httpx.Client(
        base_url=analytics_server.url,
        headers={"Authorization": f"Bearer {people['customer_token']}"},
    ) as client:
        assert client.get("/api/analytics/summary").status_code == 403
