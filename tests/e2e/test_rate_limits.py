"""Rate limits over real HTTP: a server with them on (the suite runs others with them off,
``tests/conftest.py``), counted in the Redis of ``DESKSTREAM_REDIS_URL``, set by an admin
through ``PUT /api/settings/rate-limits``.

Every client here is 127.0.0.1: a test of the per-user limits leaves the per-IP ones at 0
(no limit), and each test starts from limits of its own, with fresh users.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from infra.ratelimit.policy import DEFAULTS
from tests.conftest import LiveServer, start_server

OPEN = {scope: {"per_user": 0, "per_ip": 0, "window_seconds": 60} for scope in DEFAULTS}


@pytest.fixture(scope="module")
def server(django_db_setup: Any, django_db_blocker: Any) -> Iterator[LiveServer]:
    server = start_server({"DESKSTREAM_RATE_LIMITS": "1"})
    yield server
    server.stop()
    from infra.ratelimit.models import RateLimitSetting

    with django_db_blocker.unblock():
        RateLimitSetting.objects.all().delete()


@pytest.fixture
def limits(server: LiveServer, e2e_user: Callable[..., Any], e2e_token: Any) -> Any:
    """``limits(scope=dict(...))``: the admin sets those scopes' limits, every other off."""
    admin = e2e_token(e2e_user("admin"))

    def put(**scopes: dict[str, int]) -> None:
        with server.client(admin) as c:
            r = c.put("/api/settings/rate-limits", json={**OPEN, **scopes})
            assert r.status_code == 200, r.text

    return put


def assert_throttled(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    wait = int(r.headers["retry-after"])
    assert 1 <= wait <= 3600
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {
        "error": "throttled",
        "detail": f"Request was throttled. Expected available in {wait} seconds.",
    }


def test_an_admin_reads_and_sets_the_limits_others_may_not(server, e2e_user, e2e_token):
    admin, agent = e2e_token(e2e_user("admin")), e2e_token(e2e_user("agent"))
    with server.client(admin) as c:
        new = {**DEFAULTS, "search": {"per_user": 7, "per_ip": 70, "window_seconds": 30}}
        assert c.put("/api/settings/rate-limits", json=new).json() == new
        assert c.get("/api/settings/rate-limits").json() == new
        bad = c.put(
            "/api/settings/rate-limits",
            json={**new, "messages": {"per_user": -1, "per_ip": 1, "window_seconds": 60}},
        )
        assert bad.status_code == 400
        assert bad.json()["fields"] == {"messages.per_user": ["Expected a whole number ≥ 0."]}
        assert c.get("/api/settings/rate-limits").json() == new  # nothing stored
    with server.client(agent) as c:
        assert c.get("/api/settings/rate-limits").status_code == 403
        assert c.put("/api/settings/rate-limits", json=new).status_code == 403


def test_sign_in_is_limited_per_address_signed_in_as(server, limits):
    limits(sign_in={"per_user": 3, "per_ip": 0, "window_seconds": 3600})
    email = f"rl-{uuid.uuid4().hex[:8]}@example.test"
    with server.client() as c:
        for _ in range(3):
            assert c.post("/api/auth/demo-login", json={"email": email}).status_code == 200
        assert_throttled(c.post("/api/auth/demo-login", json={"email": email}))
        other = f"rl-{uuid.uuid4().hex[:8]}@example.test"
        assert c.post("/api/auth/demo-login", json={"email": other}).status_code == 200


def test_sign_in_and_refresh_are_limited_per_ip(server, limits):
    limits(
        sign_in={"per_user": 0, "per_ip": 2, "window_seconds": 3600},
        refresh={"per_user": 0, "per_ip": 1, "window_seconds": 3600},
    )
    with server.client() as c:
        pairs = [
            c.post("/api/auth/demo-login", json={"email": f"ip-{i}-{uuid.uuid4().hex}@x.test"})
            for i in range(3)
        ]
        assert [r.status_code for r in pairs] == [200, 200, 429]
        assert_throttled(pairs[2])
        first = c.post("/api/auth/refresh", json={"refresh": pairs[0].json()["refresh"]})
        assert first.status_code == 200
        assert_throttled(c.post("/api/auth/refresh", json={"refresh": pairs[1].json()["refresh"]}))


def test_tickets_messages_and_search_are_limited_per_user(server, limits, e2e_user, e2e_token):
    limits(
        ticket_creation={"per_user": 2, "per_ip": 0, "window_seconds": 3600},
        messages={"per_user": 2, "per_ip": 0, "window_seconds": 3600},
        search={"per_user": 2, "per_ip": 0, "window_seconds": 3600},
    )
    one, two = e2e_token(e2e_user("customer")), e2e_token(e2e_user("customer"))
    with server.client(one) as c, server.client(two) as d:
        opened = [c.post("/api/tickets", json={"subject": "s", "description": "d"}) for _ in "ab"]
        assert [r.status_code for r in opened] == [201, 201]
        assert_throttled(c.post("/api/tickets", json={"subject": "s", "description": "d"}))
        assert d.post("/api/tickets", json={"subject": "s", "description": "d"}).status_code == 201

        path = f"/api/tickets/{opened[0].json()['id']}/messages"
        assert [c.post(path, json={"body": "hi"}).status_code for _ in "ab"] == [201, 201]
        assert_throttled(c.post(path, json={"body": "hi"}))  # the message lane's answer
        assert_throttled(c.post(f"{path}?x=1", json={"body": "hi"}))  # Django's

        assert [c.get("/api/search?q=printer").status_code for _ in "ab"] == [200, 200]
        assert_throttled(c.get("/api/search?q=printer"))
        assert d.get("/api/search?q=printer").status_code == 200


def test_messages_are_limited_per_ip_across_users(server, limits, e2e_user, e2e_token):
    limits(messages={"per_user": 0, "per_ip": 3, "window_seconds": 3600})
    tokens = [e2e_token(e2e_user("customer")) for _ in range(2)]
    with server.client(tokens[0]) as c, server.client(tokens[1]) as d:
        opened = [x.post("/api/tickets", json={"subject": "s", "description": "d"}) for x in (c, d)]
        paths = [f"/api/tickets/{r.json()['id']}/messages" for r in opened]
        statuses = [
            (c if i % 2 == 0 else d).post(paths[i % 2], json={"body": "hi"}).status_code
            for i in range(4)
        ]
        assert statuses == [201, 201, 201, 429]
