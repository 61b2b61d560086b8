"""The PostgreSQL search adapter's own tuning, beyond the search contract
(``tests/contracts/test_search_contract.py``): with very common words it scores only the
newest matches (``RANK_ALL_UP_TO``), searches the newest documents first in time windows
taken from the planner's statistics, and must then find exactly what one pass finds."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from domain.lifecycle import Role
from projections.search import Principal
from tests.support.search import (
    BASE,
    CorpusLog,
    SearchAdapter,
    find,
    ids,
    open_ticket,
    postgres_search_adapter_on_empty_index,
    staff_says,
    tid,
)


@pytest.fixture
def postgres_search_adapter(db: Any) -> SearchAdapter:
    return postgres_search_adapter_on_empty_index()


def test_postgres_scores_only_the_newest_matches_of_a_very_common_word(
    postgres_search_adapter: SearchAdapter, make_user: Callable[..., Any], monkeypatch: Any
) -> None:
    """Above ``RANK_ALL_UP_TO`` matches of a kind, the newest that many are scored, paged and
    counted, and the count says it is a lower bound."""
    from infra.postgres import search as pg

    customer = make_user("customer")
    log = CorpusLog()
    oldest = open_ticket(customer, subject="Walrus everywhere", description="plain")
    log.append(oldest, at=BASE)
    newer = []
    for i in range(3):
        ticket = open_ticket(customer, subject=f"Sample {i}", description="a walrus in the text")
        log.append(ticket, at=BASE + timedelta(days=1 + i))
        newer.append(tid(ticket))
    log.feed(postgres_search_adapter)
    staff = Principal(Role.AGENT, str(make_user("agent").pk))

    everything = find(postgres_search_adapter, "walrus", staff)
    assert ids(everything, "ticket")[0] == tid(oldest)  # the subject match ranks first

    monkeypatch.setattr(pg, "RANK_ALL_UP_TO", 2)
    capped = [
        find(postgres_search_adapter, "walrus", staff, page=p, page_size=1) for p in (1, 2, 3)
    ]
    assert [(c.group("ticket").count, c.group("ticket").exact) for c in capped] == [(2, False)] * 3
    # Only the two newest were scored (equal scores: most recently updated first).
    assert [ids(c, "ticket") for c in capped] == [[newer[2]], [newer[1]], []]
    assert everything.group("ticket").exact

    # Exactly as many matches as are ranked: the count is exact.
    monkeypatch.setattr(pg, "RANK_ALL_UP_TO", 4)
    at_cap = find(postgres_search_adapter, "walrus", staff)
    assert (at_cap.group("ticket").count, at_cap.group("ticket").exact) == (4, True)
    assert ids(at_cap, "ticket")[0] == tid(oldest)


@pytest.mark.parametrize("who", ["agent", "agent filtered", "customer"])
def test_postgres_recency_windows_find_what_one_pass_finds(
    postgres_search_adapter: SearchAdapter,
    make_user: Callable[..., Any],
    monkeypatch: Any,
    who: str,
) -> None:
    """Searching the newest documents first (time windows, stopping once there are enough
    candidates) gives exactly the candidates, ranking, pages and counts of one pass."""
    from infra.postgres import search as pg

    customer = make_user("customer")
    agent = make_user("agent")
    log = CorpusLog()
    ticket = open_ticket(customer, subject="Aquarium", description="plain")
    log.append(ticket, at=BASE)
    posted = []
    for day in range(1, 13):  # one message a day; every third says "walrus" twice
        text = "walrus walrus here" if day % 3 == 0 else "a walrus here"
        staff_says(ticket, agent, text)
        posted.append(str(ticket.messages[-1].id))
        log.append(ticket, at=BASE + timedelta(days=day))
    log.feed(postgres_search_adapter)
    principal = (
        Principal(Role.CUSTOMER, str(customer.pk))
        if who == "customer"
        else Principal(Role.AGENT, str(agent.pk))
    )
    filters = {"status": ("open",)} if who == "agent filtered" else {}

    def pages(
        *, windows: list[datetime], text: str = "walrus"
    ) -> list[tuple[list[str], int, bool]]:
        monkeypatch.setattr(pg, "recency_bounds", lambda table: windows)
        out = []
        for page in (1, 2, 3):
            results = find(
                postgres_search_adapter, text, principal, page=page, page_size=2, **filters
            )
            group = results.group("message")
            out.append((ids(results, "message"), group.count, group.exact))
        return out

    monkeypatch.setattr(pg, "RANK_ALL_UP_TO", 5)
    one_pass = pages(windows=[])
    # The newest five were ranked: the "walrus walrus" of days 12 and 9 first.
    found = [m for page, _, _ in one_pass for m in page]
    assert sorted(found) == sorted(posted[-5:])
    assert set(found[:2]) == {posted[11], posted[8]}
    assert {(count, exact) for _, count, exact in one_pass} == {(5, False)}
    days = [BASE + timedelta(days=d, hours=12) for d in (11, 9, 4)]
    assert pages(windows=days) == one_pass  # enough in the first two windows
    assert pages(windows=[BASE + timedelta(days=d, hours=12) for d in (12, 11, 10)]) == one_pass
    assert pages(windows=[BASE - timedelta(days=1)]) == one_pass  # all in the first window
    # Bounds exactly at messages' times: each message is in exactly one window.
    assert pages(windows=[BASE + timedelta(days=d) for d in (11, 9, 8)]) == one_pass

    # A phrase searches the newest window, then the rest in one pass: the same again.
    phrase = pages(windows=[], text='"walrus here"')
    assert phrase == pages(windows=[BASE - timedelta(days=1)], text='"walrus here"')
    assert phrase == pages(windows=days, text='"walrus here"')
    assert pg._PHRASE.search('"walrus here"')
    assert pg._PHRASE.search("two-factor")
    assert not pg._PHRASE.search("walrus here - and there")

    monkeypatch.setattr(pg, "RANK_ALL_UP_TO", 20)  # fewer matches than ranked: exact counts
    everything = pages(windows=[])
    assert {(count, exact) for _, count, exact in everything} == {(12, True)}
    assert pages(windows=days) == everything


def test_postgres_recency_bounds_from_the_planner_statistics() -> None:
    from infra.postgres.search import WINDOWS, _bounds_from_stats

    assert WINDOWS == (0.02, 0.08, 0.25)
    day = [BASE + timedelta(days=d) for d in range(101)]  # a 100-bucket histogram, 1% each
    assert _bounds_from_stats(0.0, None, None, day) == [day[98], day[92], day[75]]
    # A common value holding 10% of the rows: the first two shares are in it.
    hist = day[:91]  # 90 buckets of 1% below it
    assert _bounds_from_stats(0.0, [day[95]], [0.1], hist) == [day[95], day[75]]
    assert _bounds_from_stats(0.0, None, None, None) == []
    assert _bounds_from_stats(0.0, None, None, day[:2]) == [day[0]]


def test_similar_tickets_describe_a_ticket_by_its_rarest_words() -> None:
    """``distinctive_terms``: at most ``SIMILAR_TERMS`` words, rarest first, none in more than
    ``SIMILAR_MAX_SHARE`` of the documents while rarer ones remain, weighed as inverse
    document frequencies; the first ones find the candidates, as many as keep the expected
    tickets with them within ``SIMILAR_CANDIDATES``."""
    from math import log

    from infra.postgres.search import (
        SIMILAR_CANDIDATES,
        SIMILAR_MAX_SHARE,
        SIMILAR_TERMS,
        LexemeStats,
        distinctive_terms,
    )

    assert (SIMILAR_TERMS, SIMILAR_MAX_SHARE, SIMILAR_CANDIDATES) == (16, 0.1, 1000)
    stats = LexemeStats(
        shares={"common": 0.5, "tenth": 0.1, "mid": 0.05, "rare": 0.001}, floor=0.001, tickets=1e4
    )
    terms = distinctive_terms(["mid", "common", "rare", "unseen", "tenth", "mid"], stats)
    # "unseen" is below the statistics' floor: half of it is assumed.
    assert terms.lexemes == ["unseen", "rare", "mid", "tenth"]
    assert terms.weights == [1 + log(1 / 0.0005), 1 + log(1 / 0.001), 1 + log(20), 1 + log(10)]
    # Expected tickets: 5, 15, 515, then 1,515 (over SIMILAR_CANDIDATES): three find them.
    assert terms.finding == 3
    # Only common words: the rarest of them all the same.
    only_common = distinctive_terms(
        ["common", "tenth"], LexemeStats({"common": 0.5, "tenth": 0.2}, 0.01, 1e4)
    )
    assert (only_common.lexemes, only_common.finding) == (["tenth", "common"], 1)
    # The rarest word finds candidates however many tickets have it.
    assert distinctive_terms(["mid", "rare"], dataclasses.replace(stats, tickets=1e9)).finding == 1
    # No statistics yet: every word weighs the same and all of them find candidates.
    words = [f"w{i:02}" for i in range(20)]
    none = distinctive_terms(words, LexemeStats())
    assert none.lexemes == words[:SIMILAR_TERMS]
    assert (set(none.weights), none.finding) == ({1.0}, SIMILAR_TERMS)
    assert distinctive_terms([], stats).lexemes == []


def test_postgres_similar_tickets_weigh_rare_words_over_common_ones(
    postgres_search_adapter: SearchAdapter, make_user: Callable[..., Any]
) -> None:
    """With the planner's statistics (ANALYZE, in the test's transaction), a ticket sharing
    this one's rare word comes before newer ones sharing a commoner word, and a word most
    tickets have finds none of them."""
    from django.db import connection

    from infra.postgres import search as pg

    customer = make_user("customer")
    log = CorpusLog()
    target = open_ticket(customer, subject="Zebra mid", description="common")
    log.append(target, at=BASE)
    rare = open_ticket(customer, subject="Zebra", description="alone")
    log.append(rare, at=BASE + timedelta(days=1))
    mids = []
    for i in range(8):
        ticket = open_ticket(customer, subject=f"Mid {i}", description="other")
        log.append(ticket, at=BASE + timedelta(days=2 + i))
        mids.append(tid(ticket))
    for i in range(100):
        filler = open_ticket(customer, subject=f"Filler {i}", description="common")
        log.append(filler, at=BASE + timedelta(days=20, minutes=i))
    log.feed(postgres_search_adapter)
    with connection.cursor() as cur:
        cur.execute("ANALYZE rm_search_doc")
    pg._stats_cache.clear()
    try:
        stats = pg.lexeme_stats(pg.TABLE)
        assert stats.shares["common"] > pg.SIMILAR_MAX_SHARE
        zebra = stats.shares.get("zebra", stats.floor / 2)
        assert zebra < stats.shares["mid"] <= pg.SIMILAR_MAX_SHARE
        assert 100 < stats.tickets < 120  # 110 tickets, estimated

        staff = Principal(Role.AGENT, str(make_user("agent").pk))
        hits = pg.PostgresSearchIndex().similar(target.id, staff, 20)
        assert [str(hit.ticket_id) for hit in hits] == [tid(rare), *reversed(mids)]
    finally:
        pg._stats_cache.clear()  # the statistics are rolled back with the test
