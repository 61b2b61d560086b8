"""Through real HTTP against uvicorn serving the ASGI app, as ``make run`` serves it."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest


def demo_login(live_api: Any, email: str) -> str:
    r = httpx.post(f"{live_api.url}/api/auth/demo-login", json={"email": email}, timeout=10)
    assert r.status_code == 200, r.text
    return str(r.json()["access"])


def at_once(n: int, fn: Any) -> list[Any]:
    """Run ``fn(i)`` in n threads released together; return their results in index order."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        results[i] = fn(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.fixture
def ticket(live_api, e2e_user, e2e_token):
    customer = e2e_user("customer")
    with live_api.client(e2e_token(customer)) as c:
        r = c.post("/api/tickets", json={"subject": "Concurrent", "description": "race"})
        assert r.status_code == 201
        return r.json()


def test_two_agents_replying_at_the_same_moment_both_land_in_order(
    live_api, e2e_user, e2e_token, ticket
):
    tokens = [e2e_token(e2e_user("agent")) for _ in range(2)]
    clients = [live_api.client(t) for t in tokens]
    try:
        results = at_once(
            2,
            lambda i: clients[i].post(
                f"/api/tickets/{ticket['id']}/messages", json={"body": f"agent {i} here"}
            ),
        )
    finally:
        for c in clients:
            c.close()
    assert [r.status_code for r in results] == [201, 201]
    versions = sorted(r.json()["version"] for r in results)
    assert versions == [2, 3]
    last = max(r.json()["position"] for r in results)
    with live_api.client(tokens[0]) as c:
        r = c.get(f"/api/tickets/{ticket['id']}/messages", params={"after": last})
        assert "X-Deskstream-Stale" not in r.headers
        thread = r.json()["results"]
    assert sorted(m["body"] for m in thread) == ["agent 0 here", "agent 1 here"]
    assert [m["version"] for m in thread] == [2, 3]
    # order in the thread is the order of the stored versions
    by_version = {r.json()["version"]: r for r in results}
    assert [m["body"] for m in thread] == [
        f"agent {results.index(by_version[v])} here" for v in (2, 3)
    ]


def test_many_concurrent_replies_lose_nothing(live_api, e2e_user, e2e_token, ticket):
    token = e2e_token(e2e_user("agent"))
    with live_api.client(token) as c:
        results = at_once(
            16, lambda i: c.post(f"/api/tickets/{ticket['id']}/messages", json={"body": f"r{i}"})
        )
        assert all(r.status_code == 201 for r in results), [r.text for r in results]
        positions = sorted(r.json()["position"] for r in results)
        assert len(set(positions)) == 16
        after = {"after": positions[-1]}
        detail = c.get(f"/api/tickets/{ticket['id']}", params=after).json()
        thread = c.get(f"/api/tickets/{ticket['id']}/messages", params=after).json()["results"]
    assert detail["version"] == 17
    assert detail["message_count"] == 16
    assert sorted(m["body"] for m in thread) == sorted(f"r{i}" for i in range(16))


def test_stale_replies_at_the_same_moment_one_wins_one_gets_409(
    live_api, e2e_user, e2e_token, ticket
):
    tokens = [e2e_token(e2e_user("agent")) for _ in range(2)]
    clients = [live_api.client(t) for t in tokens]
    try:
        results = at_once(
            2,
            lambda i: clients[i].post(
                f"/api/tickets/{ticket['id']}/messages",
                json={"body": f"answer {i}"},
                headers={"If-Match": str(ticket["version"])},
            ),
        )
    finally:
        for c in clients:
            c.close()
    codes = sorted(r.status_code for r in results)
    assert codes == [201, 409]
    winner = next(r for r in results if r.status_code == 201)
    loser = next(r for r in results if r.status_code == 409).json()
    assert loser["error"] == "stale_reply"
    assert [m["version"] for m in loser["messages"]] == [winner.json()["version"]]


def test_demo_sign_in_refresh_and_a_ticket_over_http(live_api):
    r = httpx.post(f"{live_api.url}/api/auth/demo-login", json={"email": "http.user@example.test"})
    pair = r.json()
    with live_api.client(pair["access"]) as c:
        assert c.get("/api/auth/me").json()["role"] == "customer"
        r = c.post("/api/tickets", json={"subject": "Over HTTP"})
        assert r.status_code == 201
        assert r.headers["ETag"] == '"1"'
    r = httpx.post(f"{live_api.url}/api/auth/refresh", json={"refresh": pair["refresh"]})
    assert r.status_code == 200
    r = httpx.post(f"{live_api.url}/api/auth/refresh", json={"refresh": pair["refresh"]})
    assert r.json()["error"] == "refresh_reused"


def test_bad_bodies_over_http_are_400_never_500(live_api, e2e_user, e2e_token, ticket):
    with live_api.client(e2e_token(e2e_user("agent"))) as c:
        url = f"/api/tickets/{ticket['id']}/messages"
        headers = {"Content-Type": "application/json"}
        deep = b'{"body": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"  # nested too deeply
        for raw in [b"{", b"null", b'"text"', b'{"body": "\\ud800"}', b'{"body": 1e999}', deep]:
            r = c.post(url, content=raw, headers=headers)
            assert r.status_code == 400, (raw, r.status_code, r.text)
        big = b'{"body": "' + b"x" * 400_000 + b'"}'
        assert c.post(url, content=big, headers=headers).status_code == 400

        def chunks():
            yield b'{"body": "'
            for _ in range(50):
                yield b"y" * 10_000
            yield b'"}'

        # A chunked body (no Content-Length) is not read at all: DRF treats it as empty.
        r = c.post(url, content=chunks(), headers=headers)
        assert r.status_code == 400
        assert c.get(f"/api/tickets/{ticket['id']}", params={"as_of": "2"}).status_code == 404
        assert len(c.get(f"/api/tickets/{ticket['id']}/history").json()["events"]) == 1


def test_heads_and_bodies_on_one_keep_alive_connection(live_api):
    """The server writes a response's head together with its body (config/http.py): on one
    connection, a HEAD (head only), a GET, a 404, a POST and one that expects a 100 Continue
    still frame exactly."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(live_api.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        reader = sock.makefile("rb")

        def exchange(request: bytes, *, head: bool = False) -> tuple[int, dict[str, str], bytes]:
            sock.sendall(request)
            status = int(reader.readline().split()[1])
            headers: dict[str, str] = {}
            while (line := reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            length = 0 if head else int(headers.get("content-length", "0"))
            return status, headers, reader.read(length)

        host = f"Host: {url.hostname}\r\n".encode()
        status, headers, body = exchange(
            b"HEAD /api/auth/providers HTTP/1.1\r\n" + host + b"\r\n", head=True
        )
        assert (status, body) == (200, b"")
        assert int(headers["content-length"]) > 0  # what a GET would send, not sent
        status, _, body = exchange(b"GET /api/auth/providers HTTP/1.1\r\n" + host + b"\r\n")
        assert status == 200
        assert body.startswith((b"{", b"["))
        status, _, body = exchange(b"GET /api/no-such-thing HTTP/1.1\r\n" + host + b"\r\n")
        assert status == 404
        assert b"not_found" in body
        payload = b'{"email": "maria@acme.test"}'
        status, _, body = exchange(
            b"POST /api/auth/demo-login HTTP/1.1\r\n"
            + host
            + b"Content-Type: application/json\r\nContent-Length: "
            + str(len(payload)).encode()
            + b"\r\n\r\n"
            + payload
        )
        assert status == 200
        assert b'"access"' in body
        # Expect: 100-continue: the interim 100 is written alone, then the whole response.
        sock.sendall(
            b"POST /api/auth/demo-login HTTP/1.1\r\n"
            + host
            + b"Expect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(payload)).encode()
            + b"\r\n\r\n"
            + payload
        )
        assert reader.readline() == b"HTTP/1.1 100 Continue\r\n"
        assert reader.readline() == b"\r\n"
        status, _, body = exchange(b"")
        assert status == 200
        assert b'"access"' in body


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/tickets"),
        ("POST", "/api/tickets/00000000-0000-0000-0000-000000000001/messages"),  # the lane's path
        ("GET", "/"),
    ],
)
def test_a_host_not_allowed_gets_the_json_error_body(live_api, method, path):
    r = httpx.request(
        method,
        f"{live_api.url}{path}",
        headers={"Host": "evil.example", "Authorization": "Bearer x"},
        json={"body": "hello"} if method == "POST" else None,
        timeout=10,
    )
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"error": "bad_host", "detail": "This server does not answer for that Host."}


CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@pytest.mark.parametrize("path", ["/", "/tickets/x", "/api/tickets", "/api/docs/", "/api/nothing"])
def test_every_answer_carries_the_security_headers(live_api, path):
    r = httpx.get(f"{live_api.url}{path}", timeout=10)
    assert r.headers["content-security-policy"] == CSP
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "same-origin"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in r.headers  # HSTS only when configured (and HTTPS)


def test_the_api_docs_need_no_inline_script(live_api):
    page = httpx.get(f"{live_api.url}/api/docs/", timeout=10)
    assert page.status_code == 200
    assert "<script>" not in page.text
    script = httpx.get(f"{live_api.url}/api/docs/?script=", timeout=10)
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.text
