"""The web server's push projector source: what its own application appended is handed over
in memory, everything else is read from the log, and no event is skipped (ADR 0021)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from eventsourcing.persistence import IntegrityError, StoredEvent

from command_api.application import Actor, DeskstreamApplication, eventstore_env
from domain.lifecycle import Role
from infra.postgres.event_source import PostgresEventSource, conninfo_from_django
from projections.ports import Envelope
from tests.support.wait import wait_until

pytestmark = pytest.mark.django_db

CUSTOMER = Actor("c1", Role.CUSTOMER)
AGENT = Actor("a1", Role.AGENT)


def make_app(*, group_commit: bool = False) -> DeskstreamApplication:
    return DeskstreamApplication(
        eventstore_env(settings.DATABASES["default"], pool_size=2), group_commit=group_commit
    )


@pytest.fixture
def apps() -> Iterator[tuple[DeskstreamApplication, DeskstreamApplication]]:
    """Ours (the web server's) and another process's."""
    mine, other = make_app(group_commit=True), make_app()
    yield mine, other
    mine.close()
    other.close()


class Counted(PostgresEventSource):
    """Counts the reads that go to the log."""

    log_reads = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        select = self._recorder.select_notifications

        def counted(*a: Any, **kw: Any) -> Any:
            self.log_reads += 1
            return select(*a, **kw)

        self._recorder = _Proxy(self._recorder, select_notifications=counted)


class _Proxy:
    def __init__(self, target: Any, **overrides: Any) -> None:
        self._target = target
        self.__dict__.update(overrides)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


def source(app: DeskstreamApplication, *, own: bool = True) -> Counted:
    return Counted(
        app.recorder,  # type: ignore[arg-type]
        app.mapper,
        conninfo_from_django(settings.DATABASES["default"]),
        own=app.watch_own_appends() if own else None,
    )


@pytest.fixture
def src(apps: tuple[DeskstreamApplication, DeskstreamApplication]) -> Iterator[Counted]:
    """A source over our application's appends (the push projector's)."""
    source_ = source(apps[0])
    yield source_
    source_.close()


def heard_another_application(src: PostgresEventSource) -> bool:
    """Whether the source has taken a NOTIFY of another application's append since its last
    read of the log (that read then goes to the log); takes the NOTIFYs that have arrived."""
    src._take_notifies()
    return src._stale


def read_all(src: PostgresEventSource, after: int) -> list[Envelope]:
    out: list[Envelope] = []
    while True:
        batch = src.read(after, 3)  # small batches: runs across several reads
        if not batch:
            return out
        out.extend(batch)
        after = batch[-1].position


def in_log(app: DeskstreamApplication, after: int) -> list[tuple[int, Any]]:
    plain = source(app, own=False)
    try:
        return [(e.position, e.event) for e in read_all(plain, after)]
    finally:
        plain.close()


def test_own_appends_come_from_memory_and_equal_the_log(apps, src):
    mine, _ = apps
    start = src.head()
    assert src.read(start, 100) == []  # the first read goes to the log
    assert src.log_reads == 1
    res = mine.open_ticket(CUSTOMER, customer_id="c1", subject="Hi", description="")
    for i in range(4):
        mine.post_message(res.id, AGENT, body=f"m{i}")
    got = read_all(src, start)
    assert src.log_reads == 1  # all five from memory, and "nothing more" without the log
    assert [(e.position, e.event) for e in got] == in_log(mine, start)
    assert [e.version for e in got] == [1, 2, 3, 4, 5]


def test_other_appends_are_read_from_the_log_in_order(apps, src):
    mine, other = apps
    start = src.head()
    assert src.read(start, 100) == []
    ours = mine.open_ticket(CUSTOMER, customer_id="c1", subject="Ours", description="")
    theirs = other.open_ticket(CUSTOMER, customer_id="c1", subject="Theirs", description="")
    for i in range(3):
        mine.post_message(ours.id, AGENT, body=f"ours {i}")
        other.post_message(theirs.id, AGENT, body=f"theirs {i}")
    wait_until(lambda: heard_another_application(src))  # the other's NOTIFYs arrive
    got = read_all(src, start)
    assert [(e.position, e.event) for e in got] == in_log(mine, start)
    assert len(got) == 8
    assert src.log_reads > 1


def test_wait_wakes_for_own_and_other_appends(apps, src):
    mine, other = apps
    position = src.head()
    assert src.read(position, 100) == []
    for app in (mine, other, mine):
        timer = threading.Timer(
            0.3,
            lambda a=app: a.open_ticket(
                CUSTOMER, customer_id="c1", subject="Later", description=""
            ),
        )
        timer.start()
        began = time.monotonic()
        while not (batch := src.read(position, 100)):
            src.wait(position, 5.0)
            assert time.monotonic() - began < 3.0
        timer.join()
        assert len(batch) == 1
        position = batch[0].position
    began = time.monotonic()
    src.wait(position, 0.3)  # nothing new: waits out its timeout
    assert time.monotonic() - began >= 0.25
    assert src.read(position, 100) == []


def test_a_gap_in_positions_sends_the_read_to_the_log(apps, src):
    """A refused insert uses up positions: the next own event is not at ``after + 1``."""
    mine, _ = apps
    res = mine.open_ticket(CUSTOMER, customer_id="c1", subject="Gap", description="")
    start = src.head()
    assert src.read(start, 100) == []
    duplicate = StoredEvent(res.id, 1, "deskstream.ticket:TicketOpened", b"{}")
    with pytest.raises(IntegrityError):
        mine.recorder.insert_events([duplicate])
    mine.post_message(res.id, AGENT, body="after the gap")
    reads = src.log_reads
    got = read_all(src, start)
    assert [(e.position, e.event) for e in got] == in_log(mine, start)
    assert len(got) == 1
    assert got[0].position > start + 1
    assert src.log_reads > reads


def test_an_append_that_failed_sends_readers_back_to_the_log(apps, src):
    """It may have committed all the same (a connection lost during COMMIT)."""
    mine, _ = apps
    start = src.head()
    assert src.read(start, 100) == []
    reads = src.log_reads
    assert mine.own_appends is not None
    mine.own_appends.failed()
    began = time.monotonic()
    src.wait(start, 5.0)
    assert time.monotonic() - began < 1.0
    assert src.read(start, 100) == []
    assert src.log_reads == reads + 1


def test_a_read_cut_off_at_its_limit_reads_the_log_again(apps, src):
    mine, other = apps
    start = src.head()
    assert src.read(start, 100) == []
    res = other.open_ticket(CUSTOMER, customer_id="c1", subject="Many", description="")
    for i in range(5):
        other.post_message(res.id, AGENT, body=f"m{i}")
    wait_until(lambda: heard_another_application(src))
    got = read_all(src, start)  # batches of 3: the log twice, then once more for none
    assert len(got) == 6
    assert [(e.position, e.event) for e in got] == in_log(mine, start)


def test_a_read_of_the_log_that_failed_is_made_again(apps, src):
    """What was pending before a read that raised (PostgreSQL away) is still read later."""
    mine, other = apps
    start = src.head()
    assert src.read(start, 100) == []
    other.open_ticket(CUSTOMER, customer_id="c1", subject="Theirs", description="")
    wait_until(lambda: heard_another_application(src))  # its NOTIFY arrives
    working = src._recorder.select_notifications

    def broken(*a: Any, **kw: Any) -> Any:
        raise RuntimeError("the database went away")

    src._recorder.select_notifications = broken
    with pytest.raises(RuntimeError):
        src.read(start, 100)
    src._recorder.select_notifications = working
    got = src.read(start, 100)
    assert [(e.position, e.event) for e in got] == in_log(mine, start)
    assert len(got) == 1
