"""The message lane keeps its verdict on each Host header (``MessageLane._host_allowed``):
the kept answer is Django's (``HttpRequest.get_host()``), the first time and every time
after, also once more hosts came than it keeps."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import DisallowedHost
from django.test import RequestFactory

from command_api.lane import _HOST_VERDICTS, MessageLane
from config.urls import MESSAGES
from infra.auth.tokens import AsyncSessions

HOSTS = [
    b"127.0.0.1:8000",
    b"127.0.0.1",
    b"desk.example.com",
    b"desk.example.com.",
    b"DESK.EXAMPLE.COM:443",
    b"sub.desk.example.com",
    b"example.com",
    b"evil.test",
    b"[::1]:8000",
    b"",
    b":80",
    b"a b",
    b"desk.example.com:notaport",
    b"\xe9.example.com",
]


def django_allows(host: bytes) -> bool:
    request = RequestFactory().post("/", HTTP_HOST=host.decode("latin-1"))
    try:
        request.get_host()
    except DisallowedHost:
        return False
    return True


def lane() -> MessageLane:
    async def django(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not called")

    return MessageLane(
        django,
        application=lambda: None,  # type: ignore[arg-type,return-value]
        sessions=AsyncSessions("host=127.0.0.1 dbname=unused"),  # never connects here
        route=MESSAGES,
    )


@pytest.mark.parametrize("allowed", [["127.0.0.1", ".desk.example.com"], ["*"]])
def test_the_kept_verdict_is_djangos(settings: Any, allowed: list[str]) -> None:
    settings.ALLOWED_HOSTS = allowed
    settings.DEBUG = False
    served = lane()
    made_up = [f"h{i}.desk.example.com".encode() for i in range(_HOST_VERDICTS + 5)]
    for _ in range(3):  # first sight, then kept, then after the store filled and emptied
        for host in [*HOSTS, *made_up]:
            assert served._host_allowed({b"host": host}) == django_allows(host), host
    assert len(served._host_verdicts) <= _HOST_VERDICTS
    assert served._host_allowed({}) is False  # no Host header: Django's path decides
