"""The permission matrix, generated from the URL configuration.

Every URL of ``config/urls.py`` whose view is a ``route(...)`` (``infra/server/routing.py``)
is listed with each of its methods (and each ``with_param`` variant, such as
``GET /api/tickets/{id}?as_of=``), and so is every other view of the URL map. ``MATRIX``
declares, for each of them and each object kind its path names, the status every role gets:

- anonymous (no token),
- the customer who owns the ticket (and whose notification, attachment... it is),
- another customer,
- an agent,
- an admin.

``test_every_endpoint_is_in_the_matrix`` fails when a URL or a method is added to the URL map
and not to ``MATRIX`` (or removed from the map and not from ``MATRIX``); the role tests fail
when any cell answers another status. Each cell is one request with a fresh session token,
and a request that changes a ticket gets a fresh ticket: no cell depends on another. An
answer of 4xx must carry the API's error body.

The WebSocket subscriptions' matrix is in ``tests/e2e/test_permission_matrix_ws.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from infra.server.routing import MethodRoute
from tests.conftest import project_all
from tests.support.files import clamd_address

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "owner", "other_customer", "agent", "admin")


@dataclass(frozen=True)
class Cell:
    """One endpoint on one kind of object: its path and body (``{ticket}``, ``{agent}``...
    are filled from the test's objects), whether it changes the ticket (then each role gets
    a fresh one), and the status per role, in the order of ``ROLES``."""

    path: str
    expected: tuple[int, int, int, int, int]
    body: Any = None
    fresh_ticket: bool = False
    multipart: bool = False


def row(anonymous: int, owner: int, other: int, agent: int, admin: int) -> tuple[int, ...]:
    return (anonymous, owner, other, agent, admin)


EVERYONE = row(200, 200, 200, 200, 200)
SIGNED_IN = row(401, 200, 200, 200, 200)
STAFF = row(401, 403, 403, 200, 200)
ADMIN = row(401, 403, 403, 403, 200)
ADMIN_PUT = ADMIN

# "<METHOD> <url name>[?<param>]" (what the URL map has) + " [<object kind>]" (when a URL
# names more than one kind of object) -> Cell.
MATRIX: dict[str, Cell] = {
    # Tickets and their threads: the ticket is the owner's.
    "GET tickets": Cell("/api/tickets", SIGNED_IN),
    "POST tickets": Cell("/api/tickets", row(401, 201, 201, 400, 400), {"subject": "Hi"}),
    "POST tickets [on behalf of the owner]": Cell(
        "/api/tickets",
        row(401, 201, 403, 201, 201),
        {"subject": "Phoned in", "customer_id": "{owner}"},
    ),
    "GET ticket": Cell("/api/tickets/{ticket}", row(401, 200, 404, 200, 200)),
    "GET ticket?as_of": Cell("/api/tickets/{ticket}?as_of=1", row(401, 200, 404, 200, 200)),
    "PATCH ticket": Cell(
        "/api/tickets/{ticket}", row(401, 200, 404, 200, 200), {"subject": "New"}, True
    ),
    "PATCH ticket [tags]": Cell(
        "/api/tickets/{ticket}", row(401, 403, 404, 200, 200), {"tags": ["vip"]}, True
    ),
    "GET messages": Cell("/api/tickets/{ticket}/messages", row(401, 200, 404, 200, 200)),
    "POST messages": Cell(
        "/api/tickets/{ticket}/messages", row(401, 201, 404, 201, 201), {"body": "Hello"}, True
    ),
    "POST messages [internal note]": Cell(
        "/api/tickets/{ticket}/messages",
        row(401, 403, 404, 201, 201),
        {"body": "psst", "internal": True},
        True,
    ),
    "GET ticket-history": Cell("/api/tickets/{ticket}/history", row(401, 200, 404, 200, 200)),
    "GET ticket-similar": Cell("/api/tickets/{ticket}/similar", row(401, 403, 403, 200, 200)),
    # AI drafts: staff ask on any ticket; a draft is its agent's (an unknown one is not found).
    "POST ticket-drafts": Cell(
        "/api/tickets/{ticket}/drafts", row(401, 403, 404, 202, 202), {}, fresh_ticket=True
    ),
    "GET ticket-draft": Cell(
        "/api/tickets/{ticket}/drafts/00000000-0000-4000-8000-000000000000",
        row(401, 403, 404, 404, 404),
    ),
    "GET settings-drafts": Cell("/api/settings/drafts", STAFF),
    "PUT settings-drafts": Cell(
        "/api/settings/drafts",
        ADMIN,
        {"enabled": True, "model": "", "per_agent": 20, "global": 300, "window_seconds": 60},
    ),
    "POST ticket-attachments": Cell(
        "/api/tickets/{ticket}/attachments",
        row(401, 201, 404, 201, 201),
        "file",
        fresh_ticket=True,
        multipart=True,
    ),
    # The download link is the credential (no token is looked at): without its signature
    # everyone gets the same refusal.
    "GET attachment-download": Cell("/api/attachments/{attachment}", row(403, 403, 403, 403, 403)),
    "GET attachment-download [signed for the owner]": Cell(
        "{owner_link}", row(200, 200, 200, 200, 200)
    ),
    "POST ticket-status": Cell(
        "/api/tickets/{ticket}/status",
        row(401, 200, 404, 200, 200),
        {"status": "resolved"},
        True,
    ),
    "POST ticket-status [close]": Cell(
        "/api/tickets/{ticket}/status",
        row(401, 409, 404, 409, 200),
        {"status": "closed"},
        True,
    ),
    "POST ticket-assign": Cell(
        "/api/tickets/{ticket}/assign",
        row(401, 403, 404, 200, 200),
        {"agent_id": "{agent}"},
        True,
    ),
    # Agents: "self" is the caller's own user id, "another agent" someone else's.
    "POST agent-availability": Cell(
        "/api/agents/me/availability", row(401, 403, 403, 200, 200), {"availability": "online"}
    ),
    # A customer's own id names no agent.
    "PUT agent-working-hours [self]": Cell(
        "/api/agents/me/working-hours", row(401, 404, 404, 200, 200), {"working_hours": None}
    ),
    "PUT agent-working-hours [another agent]": Cell(
        "/api/agents/{agent}/working-hours", row(401, 403, 403, 403, 200), {"working_hours": None}
    ),
    "PATCH agent-profile [self]": Cell(
        "/api/agents/me/profile", row(401, 403, 403, 403, 200), {"capacity": 5}
    ),
    "PATCH agent-profile [another agent]": Cell(
        "/api/agents/{agent}/profile", row(401, 403, 403, 403, 200), {"capacity": 5}
    ),
    "GET agent-workload": Cell("/api/agents/workload", STAFF),
    "GET customers": Cell("/api/customers", STAFF),
    "GET teams": Cell("/api/teams", STAFF),
    "GET ticket-views": Cell("/api/ticket-views", STAFF),
    # Notifications: the one named is the owner's.
    "GET notifications": Cell("/api/notifications", SIGNED_IN),
    "POST notifications-read-all": Cell("/api/notifications/read-all", SIGNED_IN, {}),
    "POST notification-read": Cell(
        "/api/notifications/{notification}/read", row(401, 200, 404, 404, 404), {}
    ),
    # Analytics: admins.
    **{
        f"GET analytics-{name}": Cell(f"/api/analytics/{name}", ADMIN)
        for name in (
            "summary",
            "open",
            "daily",
            "status-over-time",
            "first-response",
            "resolution",
            "sla",
            "backlog",
            "throughput",
            "reopens",
            "drafts",
            "satisfaction",
            "volume",
        )
    },
    "GET search": Cell("/api/search?q=printer", SIGNED_IN),
    # API sessions: refresh needs the refresh cookie (none here), demo sign-in demo mode.
    # The refresh token (body or cookie) is their credential, whoever else calls.
    "POST auth-refresh": Cell("/api/auth/refresh", row(400, 400, 400, 400, 400), {}),
    "POST auth-logout": Cell("/api/auth/logout", row(400, 400, 400, 400, 400), {}),
    "POST auth-demo-login": Cell(
        "/api/auth/demo-login", row(404, 404, 404, 404, 404), {"role": "agent"}
    ),
    "GET auth-providers": Cell("/api/auth/providers", EVERYONE),
    "GET auth-me": Cell("/api/auth/me", SIGNED_IN),
    # Admin settings and the local outbox.
    "GET email-templates": Cell("/api/settings/email-templates", ADMIN),
    "GET email-template": Cell("/api/settings/email-templates/{kind}", ADMIN),
    "PUT email-template": Cell("/api/settings/email-templates/{kind}", ADMIN, "{template}"),
    "DELETE email-template": Cell("/api/settings/email-templates/{kind}", ADMIN),
    "GET outbox": Cell("/api/outbox", ADMIN),
    "GET outbox-message": Cell("/api/outbox/{outbox}", ADMIN),
    **{
        f"{method} settings-{name}": Cell(
            f"/api/settings/{name}", ADMIN, None if method == "GET" else f"{{settings:{name}}}"
        )
        for name in ("sla", "calendar", "assignment", "rate-limits", "tickets", "sla-reminders")
        for method in ("GET", "PUT")
    },
    # The ticket's e-mails: staff. Satisfaction: the owner, once resolved (this ticket is
    # open: 400 naming rating). The link endpoints take no token; without a link: 400.
    "GET ticket-emails": Cell("/api/tickets/{ticket}/emails", row(401, 403, 403, 200, 200)),
    "POST ticket-satisfaction": Cell(
        "/api/tickets/{ticket}/satisfaction", row(401, 400, 404, 403, 403), {"rating": 5}, True
    ),
    "GET satisfaction-link": Cell("/api/satisfaction/link", row(400, 400, 400, 400, 400)),
    "POST satisfaction-link": Cell("/api/satisfaction/link", row(400, 400, 400, 400, 400), {}),
    "GET email-preferences": Cell("/api/me/email-preferences", STAFF),
    "PUT email-preferences": Cell("/api/me/email-preferences", STAFF, {"sla_emails": False}),
    "PUT ticket-team": Cell(
        "/api/tickets/{ticket}/team", row(401, 403, 403, 200, 200), {"team_id": None}, True
    ),
    "GET customer": Cell("/api/customers/{owner}", STAFF),
    # Macros and saved filters (ADR 0046): staff only; unknown ids name nothing.
    "GET macros": Cell("/api/macros", STAFF),
    "POST macros": Cell(
        "/api/macros", row(401, 403, 403, 201, 201), {"name": "Thanks", "body": "Thank you!"}
    ),
    "PATCH macro": Cell("/api/macros/{nothing}", row(401, 403, 403, 404, 404), {"name": "X"}),
    "DELETE macro": Cell("/api/macros/{nothing}", row(401, 403, 403, 404, 404)),
    "GET macro-filled": Cell(
        "/api/macros/{nothing}/filled?ticket={ticket}", row(401, 403, 403, 404, 404)
    ),
    "GET saved-filters": Cell("/api/saved-filters", STAFF),
    "POST saved-filters": Cell(
        "/api/saved-filters",
        row(401, 403, 403, 201, 201),
        {"name": "Urgent {invite}", "filters": {"priority": ["urgent"]}},
    ),
    "DELETE saved-filter": Cell("/api/saved-filters/999999", row(401, 403, 403, 404, 404)),
    # Social sign-in: no provider is configured here.
    "GET auth-login": Cell("/api/auth/login/nowhere", row(404, 404, 404, 404, 404)),
    "GET auth-complete": Cell("/api/auth/complete/nowhere", row(404, 404, 404, 404, 404)),
    "POST auth-exchange": Cell("/api/auth/exchange", row(400, 400, 400, 400, 400), {}),
    "POST email-template-preview": Cell(
        "/api/settings/email-templates/{kind}/preview", ADMIN, "{template}"
    ),
    # The admin console: admins only. Unknown teams, rebuilds and projectors name nothing.
    "GET admin-agents": Cell("/api/admin/agents", ADMIN),
    "POST admin-agent-invite": Cell(
        "/api/admin/agents/invite",
        row(401, 403, 403, 403, 201),
        {"email": "{invite}", "role": "agent"},
    ),
    "PUT admin-agent-role": Cell("/api/admin/agents/{agent}/role", ADMIN, {"role": "agent"}),
    "POST admin-agent-deactivate": Cell("/api/admin/agents/{agent}/deactivate", ADMIN, {}),
    "POST admin-agent-reactivate": Cell("/api/admin/agents/{agent}/reactivate", ADMIN, {}),
    "GET admin-teams": Cell("/api/admin/teams", ADMIN),
    "POST admin-teams": Cell(
        "/api/admin/teams", row(401, 403, 403, 403, 201), {"name": "Team {invite}"}
    ),
    "PATCH admin-team": Cell(
        "/api/admin/teams/{nothing}", row(401, 403, 403, 403, 404), {"name": "Renamed"}
    ),
    "POST admin-team-members": Cell(
        "/api/admin/teams/{nothing}/members",
        row(401, 403, 403, 403, 404),
        {"user_id": "{agent_text}"},
    ),
    "DELETE admin-team-member": Cell(
        "/api/admin/teams/{nothing}/members/{agent}", row(401, 403, 403, 403, 404)
    ),
    "GET admin-audit": Cell("/api/admin/audit", ADMIN),
    "GET admin-audit-csv": Cell("/api/admin/audit.csv", ADMIN),
    "GET admin-customer": Cell("/api/admin/customers/{owner}", ADMIN),
    "GET admin-projections": Cell("/api/admin/projections", ADMIN),
    "GET admin-rebuilds": Cell("/api/admin/projections/rebuilds", ADMIN),
    "GET admin-rebuild": Cell(
        "/api/admin/projections/rebuilds/{nothing}", row(401, 403, 403, 403, 404)
    ),
    "POST admin-projection-rebuild": Cell(
        "/api/admin/projections/nowhere/rebuild", row(401, 403, 403, 403, 404), {}
    ),
    # Operations (read_api/operations.py): probes for everyone, metrics to its token.
    "GET healthz": Cell("/healthz", EVERYONE),
    "GET readyz": Cell("/readyz", EVERYONE),
    "GET metrics": Cell("/metrics", row(403, 403, 403, 403, 403)),
    "GET metrics [with the metrics token]": Cell("/metrics", EVERYONE),
    # The schema, its docs and the web app: public.
    "GET schema": Cell("/api/schema/", EVERYONE),
    "GET docs": Cell("/api/docs/", EVERYONE),
    "GET web-app": Cell("/tickets", EVERYONE),
}

METRICS_TOKEN = "matrix-metrics-token"
__all__ = ["clamd_address"]  # a fixture


def url_map_endpoints() -> set[str]:
    """``"<METHOD> <name>[?<param>]"`` for every method of every named URL of the URL map."""
    found: set[str] = set()

    def walk(patterns: list[Any]) -> Iterator[URLPattern]:
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns)
            else:
                yield p

    for pattern in walk(get_resolver().url_patterns):
        assert pattern.name, f"every URL is named: {pattern.pattern}"
        callback = pattern.callback
        if isinstance(callback, MethodRoute):
            found |= {f"{m} {pattern.name}" for m in callback.views}
            found |= {f"{m} {pattern.name}?{param}" for m, param in callback.param_callbacks}
        else:
            view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
            methods = (
                [m.upper() for m in view_class.http_method_names if hasattr(view_class, m)]
                if view_class is not None
                else ["GET"]
            )
            found |= {f"{m} {pattern.name}" for m in methods if m not in ("HEAD", "OPTIONS")}
    return found


def test_every_endpoint_is_in_the_matrix() -> None:
    declared = {key.split(" [")[0] for key in MATRIX}
    in_the_map = url_map_endpoints()
    assert in_the_map - declared == set(), "declare these endpoints in MATRIX"
    assert declared - in_the_map == set(), "MATRIX names endpoints the URL map has not"
    # The generator sees what it must: a with_param variant, a non-route view.
    assert {"GET ticket?as_of", "GET schema", "DELETE email-template"} <= in_the_map


@pytest.fixture
def objects(
    api: Callable[..., Any],
    make_user: Callable[..., Any],
    settings: Any,
    tmp_path: Path,
    clamd_address: tuple[str, int],
) -> dict[str, Any]:
    """The owner's ticket (with an agent's public reply, so the owner has a notification),
    an attachment on it, an e-mail in the local outbox, the users of every role."""
    from infra.email.outbox import FileOutboxEmailSender
    from infra.email.ports import OutgoingEmail

    settings.ATTACHMENT_STORAGE = "local"
    settings.ATTACHMENT_DIR = str(tmp_path / "attachments")
    settings.ATTACHMENT_KEY = ""
    settings.ATTACHMENT_KEY_FILE = tmp_path / "attachment.key"
    settings.CLAMD_ADDRESS = "{}:{}".format(*clamd_address)
    settings.METRICS_TOKEN = METRICS_TOKEN
    settings.WEB_DIST = tmp_path / "dist"  # a built web app, whether or not web/ is built
    settings.WEB_DIST.mkdir()
    (settings.WEB_DIST / "index.html").write_text("<!doctype html><title>Deskstream</title>")
    owner, owner_client = api("customer")
    agent, agent_client = api("agent")
    admin, admin_client = api("admin")
    users = {
        "owner": owner,
        "other_customer": make_user("customer"),
        "agent": agent,
        "admin": admin,
    }
    spare_agent = str(make_user("agent").pk)
    ticket = open_ticket(owner_client)
    reply = agent_client.post(f"/api/tickets/{ticket}/messages", {"body": "On it"}, format="json")
    assert reply.status_code == 201, reply.content
    attachment = upload(owner_client, ticket).json()["attachment_id"]
    project_all()
    notification = owner_client.get("/api/notifications").json()["results"][0]["id"]
    from infra.email.outbox import file_name

    message_id = FileOutboxEmailSender(settings.EMAIL_OUTBOX_DIR).send(
        OutgoingEmail(
            to_address=owner.email,
            to_name="Owner",
            from_address="support@deskstream.test",
            from_name="Deskstream",
            subject="Your ticket",
            text="On it",
            html="<p>On it</p>",
            message_id=f"<{ticket}@deskstream.test>",
        )
    )
    outbox = file_name(message_id)
    detail = owner_client.get(f"/api/tickets/{ticket}").json()
    link = next(a["url"] for a in detail["attachments"] if a["id"] == attachment)
    kind = admin_client.get("/api/settings/email-templates").json()[0]["kind"]
    values = {
        "ticket": ticket,
        "owner": str(owner.pk),
        "agent": spare_agent,
        "attachment": attachment,
        "owner_link": link,
        "notification": notification,
        "outbox": outbox,
        "kind": kind,
        "nothing": "00000000-0000-4000-8000-000000000000",
        "agent_text": spare_agent,  # where a body has user ids as strings
        "invite": f"invited-{uuid.uuid4().hex[:12]}@example.test",
    }
    bodies = {
        "{template}": _editable(admin_client.get(f"/api/settings/email-templates/{kind}").json()),
        **{
            f"{{settings:{name}}}": admin_client.get(f"/api/settings/{name}").json()
            for name in (
                "sla",
                "calendar",
                "assignment",
                "rate-limits",
                "tickets",
                "drafts",
                "sla-reminders",
            )
        },
    }
    bodies["{settings:drafts}"].pop("source", None)  # said, not set
    return {"users": users, "values": values, "bodies": bodies, "owner_client": owner_client}


def _editable(template: dict[str, Any]) -> dict[str, Any]:
    return {k: template[k] for k in ("subject", "text_body", "html_body")}


def open_ticket(client: Any) -> str:
    r = client.post("/api/tickets", {"subject": "Printer on fire"}, format="json")
    assert r.status_code == 201, r.content
    return str(r.json()["id"])


def upload(client: Any, ticket: str) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = b"Hello, this is a plain text file.\n"
    body = {"file": SimpleUploadedFile("note.txt", data, "text/plain")}
    return client.post(f"/api/tickets/{ticket}/attachments", body, format="multipart")


def fill(template: Any, values: dict[str, str], bodies: dict[str, Any]) -> Any:
    if isinstance(template, str):
        if template in bodies:
            return bodies[template]
        if template in ("{owner}", "{agent}"):
            return int(values[template[1:-1]])  # user ids are integers in bodies
        out = template
        for name, value in values.items():
            out = out.replace(f"{{{name}}}", value)
        return out
    if isinstance(template, dict):
        return {k: fill(v, values, bodies) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, values, bodies) for v in template]
    return template


@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(role: str, objects: dict[str, Any], token_for: Any) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    users, values, bodies = objects["users"], objects["values"], objects["bodies"]
    column = ROLES.index(role)
    answers: dict[str, int] = {}
    wrong: dict[str, tuple[int, int, str]] = {}
    for key, cell in MATRIX.items():
        client = APIClient()
        if role != "anonymous":
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(users[role])}")
        if "metrics token" in key:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")
        cell_values = dict(values)
        if cell.fresh_ticket:
            cell_values["ticket"] = open_ticket(objects["owner_client"])
        method = key.split(" ")[0].lower()
        path = fill(cell.path, cell_values, bodies)
        if cell.multipart:
            data = b"Hello, this is a plain text file.\n"
            body = {"file": SimpleUploadedFile("note.txt", data, "text/plain")}
            response = client.post(path, body, format="multipart")
        elif cell.body is None:
            response = getattr(client, method)(path)
        else:
            response = getattr(client, method)(
                path, fill(cell.body, cell_values, bodies), format="json"
            )
        answers[key] = response.status_code
        if response.status_code != cell.expected[column]:
            wrong[key] = (cell.expected[column], response.status_code, response.content[:200])
        elif 400 <= response.status_code < 500 and path.startswith("/api/"):
            assert "error" in response.json(), (key, response.content)
    report = "\n".join(f"{k}: expected {e}, got {g}: {b!r}" for k, (e, g, b) in wrong.items())
    assert not wrong, f"{role}:\n{report}"
