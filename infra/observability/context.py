"""The request id and the correlation id of the work in hand, as context variables.

Every HTTP request gets a request id of its own; its correlation id is the caller's
(``X-Correlation-ID``) when it sends a valid one, else the request id. A command's events
carry the correlation id in their metadata (``command_api/application.py``), and projectors
and Celery tasks bind it again from there, so one command can be followed through every
process's logs (``add_ids`` puts both into each log line).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

request_id: ContextVar[str | None] = ContextVar("deskstream_request_id", default=None)
correlation_id: ContextVar[str | None] = ContextVar("deskstream_correlation_id", default=None)

# What a caller may send as an id: short, no spaces or control characters (it is logged and
# echoed in a response header).
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def new_id() -> str:
    """A new id: 128 random bits as 32 hex digits (what ``uuid4().hex`` gave, without
    building a UUID object for every request)."""
    return os.urandom(16).hex()


def valid(value: str | None) -> str | None:
    """``value`` if it may be used as an id, else None."""
    return value if value is not None and _VALID.match(value) else None


Bound = list[tuple[ContextVar[str | None], Token[str | None]]]


def bind(*, request: str | None = None, correlation: str | None = None) -> Bound:
    """Make these ids the current ones (None leaves one as it is) until ``unbind`` gets
    what this returns: ``bound`` without a generator, for the per-request path."""
    tokens: Bound = []
    if request is not None:
        tokens.append((request_id, request_id.set(request)))
    if correlation is not None:
        tokens.append((correlation_id, correlation_id.set(correlation)))
    return tokens


def unbind(tokens: Bound) -> None:
    for var, token in reversed(tokens):
        var.reset(token)


@contextmanager
def bound(*, request: str | None = None, correlation: str | None = None) -> Iterator[None]:
    """Within the block, these ids are the current ones (None leaves one as it is)."""
    tokens = bind(request=request, correlation=correlation)
    try:
        yield
    finally:
        unbind(tokens)


def metadata() -> dict[str, str]:
    """What a command's events carry: the current ids (none outside a request)."""
    out: dict[str, str] = {}
    if (cid := correlation_id.get()) is not None:
        out["correlation_id"] = cid
    if (rid := request_id.get()) is not None:
        out["request_id"] = rid
    return out


def add_ids(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> Any:
    """structlog processor: the current request and correlation ids, when there are any."""
    if (rid := request_id.get()) is not None:
        event.setdefault("request_id", rid)
    if (cid := correlation_id.get()) is not None:
        event.setdefault("correlation_id", cid)
    return event
