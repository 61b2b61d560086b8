"""The events' clock: the wall clock, or a past time a seed sets around its commands."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from domain import clock
from domain.lifecycle import Role
from tests.unit.test_ticket import open_ticket


def test_events_carry_the_wall_clock_unless_a_seed_sets_a_past_time() -> None:
    before = datetime.now(UTC)
    assert open_ticket().created_on >= before
    past = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    with clock.seeded_at(past):
        ticket = open_ticket()
        ticket.post_message(author_id="agent-1", author_role=Role.AGENT, body="Looking into it")
    assert ticket.created_on == past
    assert [e.timestamp for e in ticket.collect_events()] == [past]
    assert open_ticket().created_on >= before  # the wall clock again after the block


def test_a_seeded_time_is_aware_and_not_in_the_future() -> None:
    with pytest.raises(ValueError, match="time zone"), clock.seeded_at(datetime(2026, 3, 2)):
        pass
    later = datetime.now(UTC) + timedelta(minutes=5)
    with pytest.raises(ValueError, match="future"), clock.seeded_at(later):
        pass


def test_a_seeded_time_stays_in_its_own_thread() -> None:
    seen: list[datetime] = []
    before = datetime.now(UTC)
    with clock.seeded_at(datetime(2026, 3, 2, tzinfo=UTC)):
        other = threading.Thread(target=lambda: seen.append(clock.now()))
        other.start()
        other.join()
    assert seen[0] >= before
