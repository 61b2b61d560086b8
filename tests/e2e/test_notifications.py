"""Notifications through the running server: the WebSocket frame names the stored
notification, the list shows it, marking it read works, and the e-mail is in the outbox.

The server is ``make run``'s shape: projectors in its process, Celery eager, mail to the local
outbox (a temporary directory here, ``tests/conftest.py``).
"""

from __future__ import annotations

import time
from typing import Any

from tests.conftest import LiveServer
from tests.e2e.test_realtime import WS


def test_a_reply_is_pushed_listed_marked_read_and_e_mailed(
    live_api: LiveServer, e2e_user: Any, e2e_token: Any
) -> None:
    customer, agent, admin = e2e_user("customer"), e2e_user("agent"), e2e_user("admin")
    c_token, a_token, admin_token = e2e_token(customer), e2e_token(agent), e2e_token(admin)
    with live_api.client(c_token) as c:
        ticket = c.post("/api/tickets", json={"subject": "Printer on fire"}).json()
    ws = WS(live_api, c_token)
    ws.subscribe(stream="user", after_position=ticket["position"])
    with live_api.client(admin_token) as c:
        assert c.post(f"/api/tickets/{ticket['id']}/assign", json={"agent_id": agent.pk}).is_success
    with live_api.client(a_token) as c:
        reply = c.post(f"/api/tickets/{ticket['id']}/messages", json={"body": "Which one?"}).json()

    status_frame, reply_frame = ws.events(2)
    assert (status_frame["data"]["reason"], status_frame["data"]["notification_kind"]) == (
        "status_changed",
        "status_changed",
    )
    assert (reply_frame["data"]["reason"], reply_frame["data"]["notification_kind"]) == (
        "new_message",
        "public_reply",
    )
    ws.close()

    with live_api.client(c_token) as c:
        # The server's notification projector may still be catching up on the whole log of
        # the test session: wait until it has applied the reply.
        deadline = time.monotonic() + 120
        while True:
            response = c.get(f"/api/notifications?after={reply['position']}")
            if "X-Deskstream-Stale" not in response.headers or time.monotonic() > deadline:
                break
        listed = response.json()
        assert [(r["id"], r["kind"], r["read"]) for r in listed["results"]] == [
            (reply_frame["data"]["notification_id"], "public_reply", False),
            (status_frame["data"]["notification_id"], "status_changed", False),
        ]
        assert listed["unread_count"] == 2
        read = c.post(f"/api/notifications/{reply_frame['data']['notification_id']}/read")
        assert read.json()["unread_count"] == 1

    with live_api.client(admin_token) as c:
        # The e-mails go out in the order their notifications were made: behind those of the
        # whole test session's log, which a loaded machine may still be sending.
        deadline = time.monotonic() + 120
        subjects: list[str] = []
        while time.monotonic() < deadline:
            entries = c.get("/api/outbox?limit=1000").json()["results"]
            subjects = sorted(e["subject"] for e in entries if customer.email in e["to"])
            if len(subjects) == 2:
                break
            time.sleep(0.1)
    assert subjects == [
        '[Deskstream] New reply on "Printer on fire"',
        '[Deskstream] Your ticket "Printer on fire" is now Assigned',
    ]
