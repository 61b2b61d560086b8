"""Keeps the provider's answer out of the access log (ADR 0038).

A provider sends the browser back to ``/api/auth/complete/<provider>?code=...&state=...``.
That code is single use and bound to a PKCE verifier only this server holds, but it is
still a credential: uvicorn's access log (on at ``info`` and below) gets the path without
its query string.
"""

from __future__ import annotations

import logging

CALLBACK_PREFIX = "/api/auth/complete/"


class RedactSignInCallback(logging.Filter):
    """A handler filter: uvicorn.access records of the sign-in callback lose their query."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) >= 3:
            path = args[2]
            if isinstance(path, str) and path.startswith(CALLBACK_PREFIX) and "?" in path:
                redacted = path.split("?", 1)[0] + "?[redacted]"
                record.args = (*args[:2], redacted, *args[3:])
        return True
