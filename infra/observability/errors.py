"""Error reports to Sentry (``sentry-sdk``), when ``DESKSTREAM_SENTRY_DSN`` is set.

Personal data never leaves: the SDK sends no default PII (no user, IP address, cookies or
request bodies), its ``EventScrubber`` blanks the usual secrets (``authorization``,
``password``, ``token``...) wherever they are keys, and ``scrub`` goes over what is left
(exception messages, log messages, breadcrumbs, local variables, headers, the query string):
e-mail addresses, bearer tokens and JWTs are replaced by a placeholder, and the request's
body, cookies and user are dropped. Each report carries the request and correlation ids as
tags, so it can be found in the logs.
"""

from __future__ import annotations

import re
from typing import Any

import sentry_sdk
from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber

from infra.observability import context

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
BEARER = re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+")
JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
SCRUBBED = "[scrubbed]"
# Keys whose values go whatever they are (besides the SDK's own list).
DENY = [*DEFAULT_DENYLIST, "email", "phone", "body", "description", "subject", "name", "refresh"]


def scrub_text(text: str) -> str:
    return JWT.sub(SCRUBBED, BEARER.sub(SCRUBBED, EMAIL.sub(SCRUBBED, text)))


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_scrub(v) for v in value)
    return value


def scrub(event: dict[str, Any], _hint: Any = None) -> dict[str, Any]:
    """``before_send``: the event without personal data, tagged with the current ids."""
    request = event.get("request")
    if isinstance(request, dict):
        for key in ("data", "cookies", "env"):
            request.pop(key, None)
    event.pop("user", None)
    event = _scrub(event)
    tags = event.setdefault("tags", {})
    if isinstance(tags, dict):
        tags.update(context.metadata())
    return event


def scrub_breadcrumb(crumb: dict[str, Any], _hint: Any = None) -> dict[str, Any]:
    return _scrub(crumb)  # type: ignore[no-any-return]


def init(dsn: str, *, environment: str, traces_sample_rate: float = 0.0) -> None:
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        event_scrubber=EventScrubber(denylist=DENY, recursive=True),
        before_send=scrub,  # type: ignore[arg-type]
        before_breadcrumb=scrub_breadcrumb,
        traces_sample_rate=traces_sample_rate,
        # No integration that patches Django's handlers: the web server's own
        # (infra/server/handler.py) is pinned to Django's code (docs/upstream-patches.md).
        # Unhandled errors reach Sentry through the logging integration (django.request
        # logs them at ERROR), Celery's through its task failure logs.
        auto_enabling_integrations=False,
    )
