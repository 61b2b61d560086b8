"""The database backend (``infra.postgres.backend``): pooled connections as Django makes them."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection, connections

from infra.postgres.backend.base import DatabaseWrapper


@pytest.mark.django_db(transaction=True)
def test_pooled_connections_are_configured_without_rebuilding_the_parameters() -> None:
    for _ in range(2):  # a first connection, then one taken from the pool again
        connection.close()
        with connection.cursor() as cur:
            cur.execute(
                "SELECT current_database(), current_setting('TimeZone'), current_setting('jit')"
            )
            assert cur.fetchone() == (settings.DATABASES["default"]["NAME"], "UTC", "off")
        assert isinstance(connections["default"], DatabaseWrapper)
        assert connection.get_connection_params() == {}  # the pool has its own
    pool = connection.pool  # type: ignore[attr-defined]
    assert pool.kwargs["dbname"] == settings.DATABASES["default"]["NAME"]
