"""The WebSocket subscriptions' permission matrix, against the session's live server.

Every subscription kind the consumer serves (``infra/realtime/consumer.py``: ``STREAMS``,
and every ``stream == "..."`` branch of ``_subscribe``) is declared in ``MATRIX`` with the
answer each role gets: ``subscribed`` or the error code. A kind missing from the matrix
fails ``test_every_subscription_kind_is_in_the_matrix``. The object is the owner's ticket,
and for ``user`` the caller's own stream or the owner's. Anonymous sockets never
authenticate: every subscription answers ``not_authenticated``.
"""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

from websockets.sync.client import connect

from infra.realtime import consumer
from tests.conftest import LiveServer

ROLES = ("anonymous", "owner", "other_customer", "agent", "admin")
OK = "subscribed"

# "<stream>[ <object kind>]" -> (the subscribe frame, the answer per role)
MATRIX: dict[str, tuple[dict[str, Any], tuple[str, str, str, str, str]]] = {
    "ticket": (
        {"stream": "ticket", "ticket_id": "{ticket}"},
        ("not_authenticated", OK, "forbidden", OK, OK),
    ),
    "ticket [no such ticket]": (
        {"stream": "ticket", "ticket_id": "00000000-0000-4000-8000-000000000000"},
        ("not_authenticated", "forbidden", "forbidden", "not_found", "not_found"),
    ),
    "queue": ({"stream": "queue"}, ("not_authenticated", "forbidden", "forbidden", OK, OK)),
    "user": ({"stream": "user"}, ("not_authenticated", OK, OK, OK, OK)),
    "user [the owner's]": (
        {"stream": "user", "user_id": "{owner}"},
        ("not_authenticated", OK, "forbidden", "forbidden", "forbidden"),
    ),
    "presence": ({"stream": "presence"}, ("not_authenticated", "forbidden", "forbidden", OK, OK)),
    "drafts": (
        {"stream": "drafts", "ticket_id": "{ticket}"},
        ("not_authenticated", "forbidden", "forbidden", OK, OK),
    ),
    "drafts [no such ticket]": (
        {"stream": "drafts", "ticket_id": "00000000-0000-4000-8000-000000000000"},
        ("not_authenticated", "forbidden", "forbidden", "not_found", "not_found"),
    ),
}


def test_every_subscription_kind_is_in_the_matrix() -> None:
    branches = set(re.findall(r'stream == "([a-z_]+)"', inspect.getsource(consumer.StreamConsumer)))
    assert branches == set(consumer.STREAMS), "STREAMS lists every kind _subscribe serves"
    assert {key.split(" [")[0] for key in MATRIX} == set(consumer.STREAMS)


def answer(server: LiveServer, token: str | None, frame: dict[str, Any]) -> str:
    url = server.url.replace("http://", "ws://") + "/ws/" + (f"?token={token}" if token else "")
    with connect(url, proxy=None, open_timeout=10) as ws:
        if token:
            hello = json.loads(ws.recv(10))
            assert hello["type"] == "ready", hello
        ws.send(json.dumps({"type": "subscribe", **frame}))
        while True:
            reply = json.loads(ws.recv(10))
            if reply["type"] == "subscribed":
                return OK
            if reply["type"] == "error":
                return str(reply["error"])


def test_subscription_matrix(live_api: LiveServer, e2e_user: Any, e2e_token: Any) -> None:
    users = {role: e2e_user(role.replace("other_", "")) for role in ROLES[1:]}
    users["owner"] = e2e_user("customer")
    tokens: dict[str, str | None] = {role: e2e_token(u) for role, u in users.items()}
    tokens["anonymous"] = None
    with live_api.client(tokens["owner"]) as http:
        opened = http.post("/api/tickets", json={"subject": "Printer on fire"})
        assert opened.status_code == 201, opened.text
    values = {"ticket": opened.json()["id"], "owner": str(users["owner"].pk)}
    wrong = {}
    for key, (frame, expected) in MATRIX.items():
        filled = {k: v.format(**values) if isinstance(v, str) else v for k, v in frame.items()}
        for role, want in zip(ROLES, expected, strict=True):
            got = answer(live_api, tokens[role], filled)
            if got != want:
                wrong[(key, role)] = (want, got)
    assert wrong == {}
