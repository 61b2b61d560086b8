"""The test suite's own set-up keeps the promises other tests rely on."""

from __future__ import annotations

import pytest

from infra.auth.models import User
from tests.support.kafka import flush_if_transactional


@pytest.mark.django_db(transaction=True)
def test_flushing_before_a_kafka_test_keeps_user_ids_from_a_million(request):
    """Real users get ids from 1,000,000 on (tests/conftest.py): the made-up people of the
    domain and projector tests have small ids, and their events stay in the log. A flush that
    restarted the id sequence gave a later test's new customer such an id, and with it three
    tickets of the log that were never his (test_read_api.py, seen twice in clean clones)."""
    User.objects.create_user("before.flush", email="before.flush@example.test")
    flush_if_transactional(request)
    user = User.objects.create_user("after.flush", email="after.flush@example.test")
    assert user.pk >= 1_000_000
