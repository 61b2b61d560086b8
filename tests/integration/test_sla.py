"""SLA deadlines and breaches against the real store: the SLA projector keeps each ticket's
clock, the check (with an injected "now") records ``SlaBreached``, and the read models show it.
Also the admin settings endpoints (SLA rules, calendar, assignment policy)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from django.core.management import call_command
from django.db import connection

from command_api.application import Actor, get_application
from config import bootstrap
from config.bootstrap import event_source
from domain.lifecycle import Role
from domain.ticket import Ticket
from infra.automation.models import (
    BusinessCalendarSetting,
    SlaPolicySetting,
    SlaReminderSetting,
)
from projections import sla
from tests.integration.test_assignment import start_at_head

ALL_WEEK = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
CUSTOMER = Actor("c1", Role.CUSTOMER)


@pytest.fixture
def clock_rules(db: Any) -> None:
    """Round-the-clock business hours (deadlines are plain elapsed time) and short targets:
    high = 60 min to the first reply, 240 min to resolution."""
    start_at_head(sla.NAME)
    BusinessCalendarSetting.objects.update_or_create(
        id=1, defaults={"time_zone": "UTC", "weekly_hours": ALL_WEEK, "holidays": []}
    )
    for priority, first, resolution in [
        ("low", 600, 2400), ("medium", 120, 480), ("high", 60, 240), ("urgent", 15, 60),
    ]:  # fmt: skip
        SlaPolicySetting.objects.update_or_create(
            priority=priority,
            defaults={"first_response_minutes": first, "resolution_minutes": resolution},
        )
    # No reminders here (test_sla_reminders.py has them): a reminder moves the ticket's
    # version, and a breach checked right after it waits for the projector (the next check).
    SlaReminderSetting.objects.update_or_create(id=1, defaults={"minutes_before": 0})
    bootstrap.sla_check.forget_rules()


def opened_at(tid: UUID) -> Any:
    return get_application().ticket_events(tid)[0].timestamp


def breaches(tid: UUID) -> list[Ticket.SlaBreached]:
    return [e for e in get_application().ticket_events(tid) if isinstance(e, Ticket.SlaBreached)]


def sla_row(tid: UUID) -> tuple[Any, ...]:
    from config.bootstrap import runner

    runner(sla.NAME).catch_up()
    with connection.cursor() as cur:
        cur.execute(
            "SELECT first_response_due, resolution_due, breaches FROM rm_sla WHERE ticket_id = %s",
            [tid],
        )
        return tuple(cur.fetchone())


def test_breaches_are_recorded_once_with_their_deadlines_and_show_in_the_read_model(
    clock_rules: Any, api: Any
) -> None:
    _, agent = api("agent")
    tid = (
        get_application()
        .open_ticket(CUSTOMER, customer_id="c1", subject="Down", description="", priority="high")
        .id
    )
    t0 = opened_at(tid)
    due_first, due_resolution = t0 + timedelta(minutes=60), t0 + timedelta(minutes=240)
    assert sla_row(tid) == (due_first, due_resolution, [])
    body = agent.get(f"/api/tickets/{tid}").json()
    assert body["sla_first_response_due"] == due_first.isoformat().replace("+00:00", "Z")
    assert body["sla_breaches"] == []

    assert bootstrap.check_sla(due_first - timedelta(seconds=1)).recorded == 0
    result = bootstrap.check_sla(due_first + timedelta(seconds=1))
    assert (result.recorded, result.failed) == (1, 0)
    (event,) = breaches(tid)
    assert (event.target, event.deadline, event.breached_at, event.priority) == (
        "first_response", due_first, due_first + timedelta(seconds=1), "high")  # fmt: skip
    assert event.policy == "high: first response 1 h, resolution 4 h of business time"
    assert (event.actor_id, event.actor_role) == ("automation", "system")
    # Checking again (before and after the projector caught up) records nothing new.
    bootstrap.check_sla(due_first + timedelta(seconds=2))
    sla_row(tid)
    assert bootstrap.check_sla(due_first + timedelta(seconds=3)).recorded == 0
    assert len(breaches(tid)) == 1

    call_command("sla", "check", "--now", (due_resolution + timedelta(minutes=1)).isoformat())
    assert [e.target for e in breaches(tid)] == ["first_response", "resolution"]
    body = agent.get(f"/api/tickets/{tid}").json()
    assert body["sla_breaches"] == ["first_response", "resolution"]
    listed = agent.get("/api/tickets", {"sla_breached": "true", "page_size": 100}).json()
    assert tid in [UUID(t["id"]) for t in listed["results"]]
    clean = agent.get("/api/tickets", {"sla_breached": "false", "page_size": 100}).json()
    assert tid not in [UUID(t["id"]) for t in clean["results"]]
    history = agent.get(f"/api/tickets/{tid}/history").json()["events"]
    assert [e["type"] for e in history][-2:] == ["SlaBreached", "SlaBreached"]


def test_waiting_on_the_customer_pauses_the_clock(clock_rules: Any, make_user: Any) -> None:
    app = get_application()
    agent = Actor(str(make_user("agent").pk), Role.AGENT)
    tid = app.open_ticket(
        CUSTOMER, customer_id="c1", subject="Slow", description="", priority="high"
    ).id
    app.assign_ticket(tid, agent, agent_id=agent.id)
    app.change_status(tid, agent, status="in_progress")
    app.change_status(tid, agent, status="waiting_on_customer")
    assert sla_row(tid)[:2] == (None, None)  # paused: no deadline while waiting
    t0 = opened_at(tid)
    assert bootstrap.check_sla(t0 + timedelta(days=30)).recorded == 0
    app.post_message(tid, CUSTOMER, body="Here are the logs")  # back to In Progress
    events = app.ticket_events(tid)
    paused = events[-1].timestamp - events[4].timestamp  # StatusChanged to waiting
    first_due, resolution_due, _ = sla_row(tid)
    assert first_due == t0 + timedelta(minutes=60) + paused
    assert resolution_due == t0 + timedelta(minutes=240) + paused


def test_a_reply_in_time_meets_the_first_response_target(clock_rules: Any, make_user: Any) -> None:
    app = get_application()
    agent = Actor(str(make_user("agent").pk), Role.AGENT)
    tid = app.open_ticket(
        CUSTOMER, customer_id="c1", subject="Q", description="", priority="urgent"
    ).id
    app.post_message(tid, agent, body="Looking into it")
    sla_row(tid)
    result = bootstrap.check_sla(opened_at(tid) + timedelta(hours=5))
    assert [e.target for e in breaches(tid)] == ["resolution"]
    assert result.recorded == 1


def test_new_rules_move_the_deadlines_at_the_next_check(clock_rules: Any, api: Any) -> None:
    _, admin = api("admin")
    tid = (
        get_application()
        .open_ticket(CUSTOMER, customer_id="c1", subject="Later", description="", priority="low")
        .id
    )
    t0 = opened_at(tid)
    assert sla_row(tid)[0] == t0 + timedelta(minutes=600)
    rules = admin.get("/api/settings/sla").json()
    rules["low"] = {"first_response_minutes": 30, "resolution_minutes": 90}
    r = admin.put("/api/settings/sla", rules, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["low"] == {"first_response_minutes": 30, "resolution_minutes": 90}
    assert bootstrap.check_sla(t0).refreshed >= 1
    assert sla_row(tid)[:2] == (t0 + timedelta(minutes=30), t0 + timedelta(minutes=90))


# ---------------------------------------------------------------------------- settings API
@pytest.mark.django_db
def test_settings_are_admin_only(api: Any) -> None:
    _, agent = api("agent")
    for path in ("/api/settings/sla", "/api/settings/calendar", "/api/settings/assignment"):
        r = agent.get(path)
        assert (r.status_code, r.json()["error"]) == (403, "forbidden")
        assert agent.put(path, {}, format="json").status_code == 403


@pytest.mark.django_db
def test_defaults_are_seeded(api: Any) -> None:
    _, admin = api("admin")
    assert admin.get("/api/settings/assignment").json() == {
        "policy": "least_loaded",
        "enabled": True,
    }
    calendar = admin.get("/api/settings/calendar").json()
    assert calendar["time_zone"] == "UTC"
    assert calendar["weekly_hours"]["mon"] == [["09:00", "17:00"]]
    assert calendar["weekly_hours"]["sat"] == []
    assert admin.get("/api/settings/sla").json()["urgent"] == {
        "first_response_minutes": 60,
        "resolution_minutes": 480,
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/settings/assignment", {"policy": "random"}, "policy"),
        ("/api/settings/assignment", {"policy": "round_robin", "enabled": "yes"}, "enabled"),
        ("/api/settings/assignment", {"policy": "round_robin", "x": 1}, "x"),
        ("/api/settings/assignment", [], "non_field_errors"),
        ("/api/settings/calendar", {"time_zone": "Moon/Base", "weekly_hours": {}}, "time_zone"),
        ("/api/settings/calendar",
         {"time_zone": "UTC", "weekly_hours": {"mon": [["10:00", "09:00"]]}}, "weekly_hours.mon"),
        ("/api/settings/calendar",
         {"time_zone": "UTC", "weekly_hours": {"mon": [["09:00", "17:00"]]},
          "holidays": ["tomorrow"]}, "holidays"),
        ("/api/settings/sla", {"urgent": {"first_response_minutes": 5, "resolution_minutes": 50}},
         "low"),
        ("/api/settings/sla", {"never": {}}, "never"),
    ],
)  # fmt: skip
def test_bad_settings_are_400_naming_the_field(api: Any, path: str, body: Any, field: str) -> None:
    _, admin = api("admin")
    before = admin.get(path).json()
    r = admin.put(path, body, format="json")
    assert r.status_code == 400, r.content
    data = r.json()
    assert data["error"] == "invalid"
    assert field in data["fields"]
    assert data["detail"]
    assert admin.get(path).json() == before


@pytest.mark.django_db
def test_settings_round_trip(api: Any) -> None:
    _, admin = api("admin")
    r = admin.put("/api/settings/assignment", {"policy": "round_robin", "enabled": False},
                  format="json")  # fmt: skip
    assert r.json() == {"policy": "round_robin", "enabled": False}
    calendar = {
        "time_zone": "Europe/Berlin",
        "weekly_hours": {"mon": [["08:00", "12:00"], ["13:00", "17:00"]], "sat": []},
        "holidays": ["2026-12-25", "2026-12-24"],
    }
    r = admin.put("/api/settings/calendar", calendar, format="json")
    assert r.status_code == 200, r.content
    stored = admin.get("/api/settings/calendar").json()
    assert stored["holidays"] == ["2026-12-24", "2026-12-25"]
    assert stored["weekly_hours"]["mon"] == [["08:00", "12:00"], ["13:00", "17:00"]]
    assert stored["weekly_hours"]["tue"] == []


# ---------------------------------------------------------------------------- agent settings
@pytest.mark.django_db
def test_agents_set_their_working_hours_and_admins_their_profile(api: Any) -> None:
    agent_user, agent = api("agent")
    _, admin = api("admin")
    hours = {"time_zone": "America/New_York", "weekly_hours": {"tue": [["09:00", "17:00"]]}}
    r = agent.put("/api/agents/me/working-hours", {"working_hours": hours}, format="json")
    assert r.status_code == 200, r.content
    assert set(r.json()) == {"id", "version", "position"}
    stored = get_application().get_agent(str(agent_user.pk)).working_hours
    assert stored is not None
    assert stored["time_zone"] == "America/New_York"
    r = agent.put("/api/agents/me/working-hours", {"working_hours": {"time_zone": "X"}},
                  format="json")  # fmt: skip
    assert (r.status_code, r.json()["error"]) == (400, "invalid")
    assert "time_zone" in r.json()["fields"]
    r = agent.patch(f"/api/agents/{agent_user.pk}/profile", {"capacity": 9}, format="json")
    assert r.status_code == 403
    other_user, _ = api("agent")
    r = agent.put(f"/api/agents/{other_user.pk}/working-hours", {"working_hours": None},
                  format="json")  # fmt: skip
    assert r.status_code == 403
    r = admin.patch(f"/api/agents/{agent_user.pk}/profile",
                    {"capacity": 9, "skills": ["Billing"], "languages": ["de", "en"]},
                    format="json")  # fmt: skip
    assert r.status_code == 200, r.content
    ada = get_application().get_agent(str(agent_user.pk))
    assert (ada.capacity, ada.skills, ada.languages) == (9, ["billing"], ["de", "en"])
    r = admin.put(f"/api/agents/{other_user.pk}/working-hours", {"working_hours": None},
                  format="json")  # fmt: skip
    assert r.status_code == 200  # registered on the way, nothing else to change
    assert admin.patch("/api/agents/99999999/profile", {"capacity": 1},
                       format="json").status_code == 404  # fmt: skip
    assert admin.patch(f"/api/agents/{agent_user.pk}/profile", {"capacity": 999},
                       format="json").status_code == 400  # fmt: skip
    assert event_source().head() > 0
