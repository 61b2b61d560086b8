"""Django's PostgreSQL ``DatabaseWrapper``, minus building connection parameters per request.

With a connection pool (``OPTIONS['pool']``, config/settings.py), Django's ``connect()``
still builds the full connection parameters (a dict, the settings checks, the adapters
template) every time a request takes a connection, and ``get_new_connection`` then ignores
them and takes one from the pool, which was made with its own copy of those parameters.
That was about 3% of the web server's CPU per command (ADR 0020). Everything else is
Django's backend unchanged. It relies on Django's private ``_connection_pools``: see
docs/upstream-patches.md (3), pinned by tests/unit/test_upstream_pins.py.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        # Django's class-wide dict of pools by alias (not in django-stubs).
        if self.alias in getattr(self, "_connection_pools", {}):
            # connect() hands these to get_new_connection, which takes a pooled connection
            # and does not read them; the pool was built with the full parameters.
            return {}
        params: dict[str, Any] = super().get_connection_params()
        return params
