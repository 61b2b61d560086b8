"""The admin console's API: every admin endpoint for every role, and each main action
(invitations, deactivation ending sessions, roles, teams and team routing, the audit
browser and its CSV export, admin changes recorded with before and after, rebuilds from
the console, customer profiles, the e-mail preview) against the real event store."""

from __future__ import annotations

import csv
import io
import time
from typing import Any
from uuid import UUID

import pytest
from rest_framework.test import APIClient

from command_api.application import Actor, get_application
from config import bootstrap
from domain.lifecycle import Role
from domain.ticket import Ticket
from infra.auth.models import AuthSession, User
from infra.postgres.models import ProjectionRebuild
from tests.integration.test_assignment import (  # noqa: F401 - the fixture
    assignments,
    manager,
    online_agent,
    open_ticket,
    set_policy,
)

pytestmark = pytest.mark.django_db

# name -> (method, path template, body, admin's expected status)
ADMIN_ENDPOINTS: dict[str, tuple[str, str, Any, int]] = {
    "agents": ("get", "/api/admin/agents", None, 200),
    "invite": ("post", "/api/admin/agents/invite", {"email": "{email}", "role": "agent"}, 201),
    "deactivate": ("post", "/api/admin/agents/{agent}/deactivate", None, 200),
    "reactivate": ("post", "/api/admin/agents/{agent}/reactivate", None, 200),
    "role": ("put", "/api/admin/agents/{agent}/role", {"role": "admin"}, 200),
    "profile": ("patch", "/api/agents/{agent}/profile", {"capacity": 3}, 200),
    "teams": ("get", "/api/admin/teams", None, 200),
    "team_create": ("post", "/api/admin/teams", {"name": "Billing"}, 201),
    "team_edit": ("patch", "/api/admin/teams/{team}", {"name": "Payments"}, 200),
    "team_add": ("post", "/api/admin/teams/{team}/members", {"user_id": "{agent}"}, 200),
    "team_remove": ("delete", "/api/admin/teams/{team}/members/{agent}", None, 200),
    "audit": ("get", "/api/admin/audit?page_size=5", None, 200),
    "audit_csv": ("get", "/api/admin/audit.csv?ticket={ticket}", None, 200),
    "customer": ("get", "/api/admin/customers/{customer}", None, 200),
    "projections": ("get", "/api/admin/projections", None, 200),
    "rebuilds": ("get", "/api/admin/projections/rebuilds", None, 200),
    "rebuild_one": ("get", "/api/admin/projections/rebuilds/{rebuild}", None, 200),
    "settings_sla": ("get", "/api/settings/sla", None, 200),
    "settings_calendar": ("get", "/api/settings/calendar", None, 200),
    "settings_assignment": ("get", "/api/settings/assignment", None, 200),
    "settings_tickets": ("get", "/api/settings/tickets", None, 200),
    "settings_intake_put": (
        "put",
        "/api/settings/tickets",
        {"customers_set_priority": True},
        200,
    ),
    "email_templates": ("get", "/api/settings/email-templates", None, 200),
    "email_preview": (
        "post",
        "/api/settings/email-templates/assigned/preview",
        {"subject": "Hi ${agent_name}", "text_body": "x", "html_body": "<p>x</p>"},
        200,
    ),
    "outbox": ("get", "/api/outbox", None, 200),
}
ROLES = ("anonymous", "customer", "agent", "admin")


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, text in ids.items():
            value = value.replace("{" + key + "}", text)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


@pytest.mark.parametrize("role", ROLES)
def test_every_admin_endpoint_refuses_all_but_admins(api: Any, make_user: Any, role: str) -> None:
    """One request per endpoint for each role, on fresh objects: only admins get through."""
    customer, _ = api("customer")
    tid = get_application().open_ticket(
        Actor(str(customer.pk), Role.CUSTOMER),
        customer_id=str(customer.pk),
        subject="Hi",
        description="",
    )
    team = get_application().create_team(Actor("1", Role.ADMIN), name="Team")
    job = ProjectionRebuild.objects.create(
        id=UUID(int=time.monotonic_ns()),
        projector="sla",
        state="done",
        started_by="1",
        started_at="2026-01-01T00:00:00Z",
    )
    if role == "anonymous":
        client = APIClient()
    else:
        _, client = api(role)
    outcomes = {}
    for name, (method, template, body, admin_code) in ADMIN_ENDPOINTS.items():
        agent = make_user("agent")
        ids = {
            "agent": str(agent.pk),
            "team": str(team.id),
            "ticket": str(tid.id),
            "customer": str(customer.pk),
            "rebuild": str(job.id),
            "email": f"invited-{role}-{name}-{time.monotonic_ns()}@example.test",
        }
        if name == "team_remove":
            get_application().add_team_member(team.id, Actor("1", Role.ADMIN), user_id=ids["agent"])
        if name == "reactivate":
            User.objects.filter(pk=agent.pk).update(is_active=False)
        response = getattr(client, method)(_fill(template, ids), _fill(body, ids), format="json")
        outcomes[name] = response.status_code
        expected = {"anonymous": 401, "admin": admin_code}.get(role, 403)
        if outcomes[name] != expected:
            body_text = getattr(response, "content", b"")[:300]
            raise AssertionError(f"{role} {name}: {outcomes[name]} != {expected}: {body_text!r}")
        if outcomes[name] >= 400:
            assert response.json()["error"] in ("not_authenticated", "forbidden", "token_invalid")


def test_invitation_creates_the_agent_marked_invited_and_records_it(api: Any) -> None:
    admin, client = api("admin")
    r = client.post(
        "/api/admin/agents/invite",
        {"email": "New.Agent@Example.test", "name": "New Agent", "role": "admin"},
        format="json",
    )
    assert r.status_code == 201, r.content
    user = User.objects.get(pk=int(r.json()["id"]))
    facts = (user.email, user.role, user.is_active, user.invited_by_id, user.has_usable_password())
    assert facts == ("new.agent@example.test", "admin", True, admin.pk, False)
    assert user.invited_at is not None
    assert r.json()["name"] == "New Agent"
    assert get_application().get_agent(str(user.pk)).name == "New Agent"
    again = client.post(
        "/api/admin/agents/invite", {"email": "new.agent@example.test"}, format="json"
    )
    assert again.status_code == 409
    assert again.json()["error"] == "conflict"
    bad = client.post("/api/admin/agents/invite", {"email": "nope", "role": "boss"}, format="json")
    assert bad.status_code == 400
    assert set(bad.json()["fields"]) == {"email", "role"}
    audit = client.get(f"/api/admin/audit?type=ChangeRecorded&actor={admin.pk}").json()
    (row,) = [e for e in audit["results"] if e["data"]["subject"] == f"user:{user.pk}"]
    assert row["data"]["action"] == "agent.invited"
    assert row["data"]["before"] is None
    assert row["data"]["after"]["role"] == "admin"
    assert row["actor"] == {"id": str(admin.pk), "role": "admin", "name": admin.display_name}


def test_deactivation_ends_the_agents_sessions_at_once(api: Any, token_for: Any) -> None:
    _, admin = api("admin")
    agent, agent_client = api("agent")
    assert agent_client.get("/api/auth/me").status_code == 200
    r = admin.post(f"/api/admin/agents/{agent.pk}/deactivate")
    assert r.status_code == 200
    assert r.json()["is_active"] is False
    refused = agent_client.get("/api/auth/me")
    assert refused.status_code == 401
    assert not AuthSession.objects.filter(user=agent, revoked_at__isnull=True).exists()
    assert AuthSession.objects.filter(user=agent, revoked_reason="deactivated").exists()
    assert admin.post(f"/api/admin/agents/{agent.pk}/reactivate").json()["is_active"] is True
    fresh = APIClient()
    fresh.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(User.objects.get(pk=agent.pk))}")
    assert fresh.get("/api/auth/me").status_code == 200
    assert agent_client.get("/api/auth/me").status_code == 401  # the old session stays ended
    me = admin.post("/api/admin/agents/0/deactivate")
    assert me.status_code == 404


def test_admins_cannot_lock_themselves_out(api: Any) -> None:
    admin, client = api("admin")
    assert client.post(f"/api/admin/agents/{admin.pk}/deactivate").status_code == 409
    r = client.put(f"/api/admin/agents/{admin.pk}/role", {"role": "agent"}, format="json")
    assert r.status_code == 409
    assert (
        client.put(f"/api/admin/agents/{admin.pk}/role", {"role": "x"}, format="json").status_code
        == 400
    )


def test_role_change_is_recorded_with_before_and_after(api: Any, make_user: Any) -> None:
    admin, client = api("admin")
    agent = make_user("agent")
    r = client.put(f"/api/admin/agents/{agent.pk}/role", {"role": "admin"}, format="json")
    assert r.json()["role"] == "admin"
    rows = client.get(f"/api/admin/audit?type=ChangeRecorded&actor={admin.pk}").json()["results"]
    (row,) = [e for e in rows if e["data"]["action"] == "agent.role_changed"]
    assert (row["data"]["before"]["role"], row["data"]["after"]["role"]) == ("agent", "admin")


def test_agent_list_shows_profile_and_teams(api: Any, make_user: Any) -> None:
    _, client = api("admin")
    agent = make_user("agent")
    client.patch(f"/api/agents/{agent.pk}/profile", {"capacity": 7, "skills": ["billing"]},
                 format="json")  # fmt: skip
    team = client.post("/api/admin/teams", {"name": "  Billing   team "}, format="json").json()
    client.post(f"/api/admin/teams/{team['id']}/members", {"user_id": str(agent.pk)}, format="json")
    bootstrap.runner("assignment").catch_up()
    rows = []
    url: str | None = "/api/admin/agents?role=agent&page_size=200"
    while url:
        page = client.get(url).json()
        rows += page["results"]
        url = page["next"]
    (row,) = [r for r in rows if r["id"] == str(agent.pk)]
    assert (row["capacity"], row["skills"], row["teams"]) == (
        7, ["billing"], [{"id": team["id"], "name": "Billing team"}])  # fmt: skip
    teams = client.get("/api/admin/teams?page_size=200").json()["results"]
    (listed,) = [t for t in teams if t["id"] == team["id"]]
    assert listed["members"] == [{"id": str(agent.pk), "name": agent.display_name}]
    assert client.get("/api/admin/agents?active=maybe").status_code == 400


def test_team_lifecycle_and_bad_input(api: Any, make_user: Any) -> None:
    _admin, client = api("admin")
    r = client.post("/api/admin/teams", {"name": "Support"}, format="json")
    tid = r.json()["id"]
    assert client.post("/api/admin/teams", {"name": "   "}, format="json").status_code == 400
    assert client.post("/api/admin/teams", {"name": 5}, format="json").status_code == 400
    assert client.patch(f"/api/admin/teams/{tid}", {}, format="json").status_code == 400
    assert (
        client.patch(f"/api/admin/teams/{UUID(int=1)}", {"name": "x"}, format="json").status_code
        == 404
    )
    assert client.patch("/api/admin/teams/nope", {"name": "x"}, format="json").status_code == 404
    no_user = client.post(f"/api/admin/teams/{tid}/members", {"user_id": "999999"}, format="json")
    assert no_user.status_code == 400
    assert client.patch(f"/api/admin/teams/{tid}", {"name": "Help", "archived": True},
                        format="json").status_code == 200  # fmt: skip
    agent = make_user("agent")
    closed = client.post(
        f"/api/admin/teams/{tid}/members", {"user_id": str(agent.pk)}, format="json"
    )
    assert closed.status_code == 409
    team = get_application().get_team(UUID(tid))
    assert (team.name, team.archived) == ("Help", True)
    rows = client.get("/api/admin/audit?type=TeamCreated,TeamRenamed,TeamArchived").json()
    types = [e["type"] for e in rows["results"] if e["aggregate_id"] == tid]
    assert types == ["TeamArchived", "TeamRenamed", "TeamCreated"]


def test_a_ticket_routed_to_a_team_goes_to_a_member_with_the_reason(
    manager: Any,  # noqa: F811 - the fixture imported above
    api: Any,
    make_user: Any,
) -> None:
    set_policy("least_loaded")
    outsider = online_agent(make_user)  # least loaded, but not in the team
    member = online_agent(make_user)
    get_application().assign_ticket(open_ticket(), Actor("1", Role.ADMIN), agent_id=member)
    _, admin = api("admin")
    team = admin.post("/api/admin/teams", {"name": "Billing"}, format="json").json()
    admin.post(f"/api/admin/teams/{team['id']}/members", {"user_id": member}, format="json")
    _, agent_client = api("agent")
    tid = open_ticket()
    r = agent_client.put(f"/api/tickets/{tid}/team", {"team_id": team["id"]}, format="json")
    assert r.status_code == 200, r.content
    manager()
    (event,) = assignments(tid)
    assert event.agent_id == member
    assert outsider != member
    assert (
        event.reason == "team Billing (1 members), least loaded: 1/5 open, no skill required, "
        "language en, online"
    )
    changed = [e for e in get_application().ticket_events(tid) if isinstance(e, Ticket.TeamChanged)]
    assert [(e.from_team_id, e.to_team_id) for e in changed] == [(None, team["id"])]
    bad = agent_client.put(f"/api/tickets/{tid}/team", {"team_id": str(UUID(int=7))}, format="json")
    assert bad.status_code == 400
    assert bad.json()["fields"] == {"team_id": ["No such team."]}
    _, customer = api("customer")
    assert (
        customer.put(f"/api/tickets/{tid}/team", {"team_id": None}, format="json").status_code
        == 403
    )


def test_staff_see_a_tickets_team_and_the_teams_to_route_to(api: Any, make_user: Any) -> None:
    """The ticket's team is on the staff's read of it (the tickets projection follows
    TeamChanged), never on its customer's; ``GET /api/teams`` lists the active teams."""
    _, admin = api("admin")
    team = admin.post("/api/admin/teams", {"name": "Routing desk"}, format="json").json()
    gone = admin.post("/api/admin/teams", {"name": "Gone desk"}, format="json").json()
    admin.patch(f"/api/admin/teams/{gone['id']}", {"archived": True}, format="json")
    _, customer = api("customer")
    tid = customer.post(
        "/api/tickets", {"subject": "Route me", "description": "d"}, format="json"
    ).json()["id"]
    _, agent = api("agent")
    routed = agent.put(f"/api/tickets/{tid}/team", {"team_id": team["id"]}, format="json")
    assert routed.status_code == 200, routed.content
    assert agent.get(f"/api/tickets/{tid}").json()["team_id"] == team["id"]
    seen = customer.get(f"/api/tickets/{tid}").json()
    assert "team_id" not in seen
    assert seen["version"] == 1  # routing is staff bookkeeping: the customer's view stays
    names = [t["name"] for t in agent.get("/api/teams").json()]
    assert "Routing desk" in names
    assert "Gone desk" not in names
    assert customer.get("/api/teams").status_code == 403


def test_audit_filters_and_csv_export(api: Any) -> None:
    admin, client = api("admin")
    owner, owner_client = api("customer")
    tid = owner_client.post("/api/tickets", {"subject": "Audit me", "description": "x"},
                            format="json").json()["id"]  # fmt: skip
    client.patch(f"/api/tickets/{tid}", {"priority": "urgent"}, format="json")
    client.post(f"/api/tickets/{tid}/messages", {"body": "note", "internal": True}, format="json")
    all_rows = client.get(f"/api/admin/audit?ticket={tid}").json()
    assert [e["type"] for e in all_rows["results"]] == [
        "MessagePosted",
        "PriorityChanged",
        "TicketOpened",
    ]
    assert all_rows["next_before"] is None
    by_admin = client.get(f"/api/admin/audit?ticket={tid}&actor={admin.pk}").json()["results"]
    assert [e["type"] for e in by_admin] == ["MessagePosted", "PriorityChanged"]
    page = client.get(f"/api/admin/audit?ticket={tid}&page_size=1").json()
    assert len(page["results"]) == 1
    assert page["next_before"] == page["results"][0]["position"]
    older = client.get(f"/api/admin/audit?ticket={tid}&page_size=5&before={page['next_before']}")
    assert [e["type"] for e in older.json()["results"]] == ["PriorityChanged", "TicketOpened"]
    opened = all_rows["results"][-1]["time"]
    later = client.get(f"/api/admin/audit?ticket={tid}&since={opened.replace('+00:00', 'Z')}")
    assert len(later.json()["results"]) == 3
    until = client.get(f"/api/admin/audit?ticket={tid}&until={opened.replace('+00:00', 'Z')}")
    assert until.json()["results"] == []
    response = client.get(f"/api/admin/audit.csv?ticket={tid}&type=PriorityChanged")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert lines[0][:3] == ["position", "time", "type"]
    assert [(r[2], r[6], r[7]) for r in lines[1:]] == [("PriorityChanged", str(admin.pk), "admin")]
    for bad in ("type=Nope", "ticket=x", "since=yesterday", "page_size=0", "before=-1",
                "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z"):  # fmt: skip
        r = client.get(f"/api/admin/audit?{bad}")
        assert (r.status_code, r.json()["error"]) == (400, "invalid"), bad
    assert client.get("/api/admin/audit.csv?type=Nope").status_code == 400
    assert owner.pk  # the customer only opened the ticket


def test_settings_changes_are_recorded_with_before_and_after(api: Any) -> None:
    admin, client = api("admin")
    client.put("/api/settings/tickets", {"customers_set_priority": False}, format="json")
    client.put("/api/settings/tickets", {"customers_set_priority": True}, format="json")
    sla = client.get("/api/settings/sla").json()
    client.put("/api/settings/sla", sla, format="json")
    rows = client.get(f"/api/admin/audit?type=ChangeRecorded&actor={admin.pk}").json()["results"]
    intake = [e["data"] for e in rows if e["data"]["action"] == "settings.tickets"]
    assert intake[0]["before"] == {"customers_set_priority": False}
    assert intake[0]["after"] == {"customers_set_priority": True}
    assert any(e["data"]["action"] == "settings.sla" for e in rows)
    tpl = client.get("/api/settings/email-templates/assigned").json()
    r = client.put("/api/settings/email-templates/assigned",
                   {"subject": "New: ${ticket_subject}", "text_body": tpl["text_body"],
                    "html_body": tpl["html_body"]}, format="json")  # fmt: skip
    assert r.status_code == 200
    client.delete("/api/settings/email-templates/assigned")
    rows = client.get(f"/api/admin/audit?type=ChangeRecorded&actor={admin.pk}").json()["results"]
    edits = [e["data"] for e in rows if e["data"]["action"] == "settings.email_template"]
    assert [e["after"]["subject"] for e in edits] == [tpl["subject"], "New: ${ticket_subject}"]


def test_email_preview_renders_a_draft_and_stores_nothing(api: Any) -> None:
    _, client = api("admin")
    body = {"subject": "Hi ${agent_name}", "text_body": "${ticket_subject} ${nope}",
            "html_body": "<p onclick='x()'>${ticket_subject}</p>"}  # fmt: skip
    r = client.post("/api/settings/email-templates/assigned/preview", body, format="json")
    data = r.json()
    assert (data["subject"], data["text"], data["html"]) == (
        "Hi Grace Agent", "Printer on fire ${nope}", "<p>Printer on fire</p>")  # fmt: skip
    assert list(data["problems"]) == ["text_body"]
    assert (
        client.get("/api/settings/email-templates/assigned").json()["subject"] != "Hi ${agent_name}"
    )
    assert (
        client.post("/api/settings/email-templates/nope/preview", body, format="json").status_code
        == 404
    )


def test_customer_profile(api: Any) -> None:
    customer, owner = api("customer")
    owner.post("/api/tickets", {"subject": "One", "description": "x"}, format="json")
    _, client = api("admin")
    profile = client.get(f"/api/admin/customers/{customer.pk}").json()
    assert (profile["email"], profile["open_tickets"], profile["total_tickets"]) == (
        customer.email, 1, 1)  # fmt: skip
    assert client.get("/api/admin/customers/abc").status_code == 404
    agent, _ = api("agent")
    assert client.get(f"/api/admin/customers/{agent.pk}").status_code == 404


@pytest.mark.django_db(transaction=True)  # the rebuild's thread sees only what is committed
def test_rebuild_from_the_console_runs_to_done_with_progress(api: Any) -> None:
    _, client = api("admin")
    names = {p["name"] for p in client.get("/api/admin/projections").json()}
    assert {"read_models", "assignment", "sla", "notifications", "search"} <= names
    r = client.post("/api/admin/projections/sla/rebuild")
    assert r.status_code == 202, r.content
    job = r.json()["id"]
    bootstrap.rebuilds().wait("sla", timeout=120)
    done = client.get(f"/api/admin/projections/rebuilds/{job}").json()
    assert (done["state"], done["error"]) == ("done", "")
    assert done["done"] == done["total"]
    assert done["position"] is not None
    assert client.post("/api/admin/projections/nope/rebuild").status_code == 404
    assert client.get(f"/api/admin/projections/rebuilds/{UUID(int=5)}").status_code == 404
    listed = client.get("/api/admin/projections/rebuilds").json()["results"]
    assert listed[0]["id"] == job
