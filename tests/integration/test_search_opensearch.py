"""Search on OpenSearch (osmem-server, started by ``scripts/with_services.py``): writes
versioned by ticket, the projector on the notification log and on a Kafka consumer group,
the zero-downtime rebuild under searches and writes, OpenSearch down (503, the projector
pauses and resumes, commands unaffected), and ``/similar`` on both backends.

The contract itself (what a search finds) is ``tests/contracts/test_search_contract.py``.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from command_api.application import Actor, get_application
from config import bootstrap
from domain.lifecycle import Role
from domain.ticket import Ticket
from infra.opensearch import osmem
from infra.opensearch import search as os_search
from processes import runtime
from projections.ports import Envelope
from projections.search import Principal, SearchQuery, SearchUnavailableError
from tests.integration.test_kafka import topic
from tests.support.history import generate
from tests.support.kafka import kafka_bootstrap

__all__ = ["kafka_bootstrap", "topic"]  # fixtures

STAFF = Principal(Role.AGENT, "agent-1")


@pytest.fixture
def opensearch(settings: Any) -> Iterator[str]:
    """Search on OpenSearch, in an alias (and indexes) of this test's own."""
    url = os.environ.get("DESKSTREAM_OPENSEARCH_URL")
    if not url:
        pytest.skip("no OpenSearch server (run through scripts/with_services.py)")
    settings.SEARCH_BACKEND = "opensearch"
    settings.OPENSEARCH_URL = url
    settings.OPENSEARCH_INDEX = f"test-{uuid.uuid4().hex[:12]}"
    settings.OPENSEARCH_REFRESH = "wait_for"
    yield url
    bootstrap.opensearch_store().drop()


def test_a_new_live_index_starts_at_zero_whatever_position_a_lost_server_was_left(opensearch):
    """OpenSearch lost everything (osmem restarted, a new cluster) while the projector was
    between its documents and its position: the position write reached the empty server
    (creating the positions index again) with no document. The live index created next
    starts at 0, so the projector fills it again from the log."""
    store = bootstrap.opensearch_store()
    store.client.index(index=store.positions, id=f"{store.alias}-0", body={"position": 42})
    assert store.position() == 0
    assert store.status()["index"] == f"{store.alias}-0"


def find(text: str, principal: Principal = STAFF, **filters: Any) -> Any:
    return bootstrap.search_index().search(SearchQuery(text=text, principal=principal, **filters))


def ticket_ids(results: Any) -> list[str]:
    return [hit.id for hit in results.group("ticket").hits]


class Events:
    """Events of ``Ticket`` aggregates with increasing positions (as the log numbers them)."""

    def __init__(self) -> None:
        self.positions = itertools.count(1)
        self.at = datetime(2025, 3, 1, tzinfo=UTC)

    def take(self, ticket: Ticket) -> list[Envelope]:
        out = []
        for event in ticket.collect_events():
            self.at += timedelta(minutes=1)
            out.append(
                Envelope(next(self.positions), dataclasses.replace(event, timestamp=self.at))
            )
        return out


# ------------------------------------------------------------------ versioned writes
@pytest.mark.django_db
def test_late_duplicated_and_redelivered_events_never_overwrite_newer_data(opensearch):
    events = Events()
    staff = {"actor_id": "agent-1", "actor_role": Role.AGENT}
    kettle = Ticket.open(
        customer_id="c-9",
        subject="Kettle whistles",
        description="A loud kettle.",
        actor_id="c-9",
        actor_role=Role.CUSTOMER,
    )
    opened = events.take(kettle)
    kettle.post_message(author_id="agent-1", author_role=Role.AGENT, body="Descale the kettle.")
    posted = events.take(kettle)
    kettle.change_priority(priority="urgent", **staff)
    kettle.edit(subject="Kettle repaired", description="Quiet now.", tags=["done"], **staff)
    later = events.take(kettle)
    store = bootstrap.opensearch_store(stream=True)  # a Kafka consumer's store

    with store.batch() as batch:  # all of it, in order
        batch.apply([*opened, *posted, *later])
        assert batch.applied == 4
    with store.batch() as batch:  # re-delivered after a crash or a rebalance: dropped
        batch.apply([*opened, *posted, later[0]])
        assert batch.applied == 0

    assert find("whistles").group("ticket").count == 0
    assert ticket_ids(find("repaired")) == [str(kettle.id)]
    (message,) = find("descale", priority=("urgent",)).group("message").hits
    assert message.tags == ("done",)

    # A late write of an old version (a slow second writer): OpenSearch refuses it (409),
    # the adapter ignores the refusal, the newer document stays.
    old = os_search.to_source(
        {
            **os_search.from_source(_source(store, f"ticket:{kettle.id}")),
            "title": "Kettle whistles",
        },
        "en",
    )
    store.write([{"_id": f"ticket:{kettle.id}", "_source": old, "version": 1}])
    assert _source(store, f"ticket:{kettle.id}")["title"] == "Kettle repaired"
    assert store.client.get(index=store.alias, id=f"ticket:{kettle.id}")["_version"] == 4

    # A version gap means an event was lost upstream: loud, nothing written.
    gap = Ticket.open(
        customer_id="c-9", subject="Gap", description="", actor_id="c-9", actor_role=Role.CUSTOMER
    )
    events.take(gap)
    gap.change_priority(priority="low", **staff)
    with pytest.raises(os_search.EventGapError), store.batch() as batch:
        batch.apply(events.take(gap))
    assert find("gap").group("ticket").count == 0


@pytest.mark.django_db
def test_on_kafka_the_position_is_the_contiguous_frontier(opensearch):
    """Partitions advance unevenly: the position (what ``?after=`` waits for) stays just
    below the first event not in the index yet, and the lag counts exactly those events."""
    from collections import defaultdict

    from command_api.application import get_application
    from tests.support.history import generate

    generate(get_application(), tickets=6, steps=60, seed=17)
    envelopes = list(bootstrap.event_source().read(0, 100_000))
    by_ticket: dict[Any, list[Any]] = defaultdict(list)
    for e in envelopes:
        by_ticket[e.aggregate_id].append(e)
    newest = envelopes[-1].aggregate_id
    behind = [es for a, es in by_ticket.items() if len(es) >= 4 and a != newest][:2]
    held = [e for es in behind for e in es[2:]]
    assert len(behind) == 2
    store = bootstrap.opensearch_store(stream=True)  # a Kafka consumer's store

    with store.batch() as batch:  # everything but the two tickets' later events
        batch.apply([e for e in envelopes if e not in held])
    first_missing = min(e.position for e in held)
    assert store.position() == max(e.position for e in envelopes if e.position < first_missing)
    assert store.unapplied() == len(held)

    with store.batch() as batch:  # re-delivered events and the late partitions
        batch.apply([*envelopes[:5], *held])
    assert store.position() == envelopes[-1].position
    assert store.unapplied() == 0


@pytest.mark.django_db
def test_languages_accents_and_prefixes(opensearch, make_user):
    """Per-language stemming, case and accent folding, and type-ahead prefixes of names,
    e-mail addresses and ticket ids (OpenSearch's own analysis; not part of the contract)."""
    zoe = make_user("customer", email="zoe.quixote@example.test", company="Quixote Supplies")
    zoe.first_name, zoe.last_name = "Zoë", "Quixote"
    zoe.save()
    events = Events()

    def ticket(subject: str, description: str, language: str) -> Ticket:
        return Ticket.open(
            customer_id=str(zoe.pk),
            subject=subject,
            description=description,
            language=language,
            actor_id=str(zoe.pk),
            actor_role=Role.CUSTOMER,
        )

    french = ticket("Les maisons", "L'imprimante ne marche pas", "fr")
    german = ticket("Die Häuser", "Der Drucker druckt nicht", "de")  # not stemmed (yet)
    english = ticket("CAFÉ printers", "Jammed again", "en")
    with bootstrap.opensearch_store().batch() as batch:
        batch.apply([*events.take(french), *events.take(german), *events.take(english)])

    assert ticket_ids(find("maison")) == [str(french.id)]  # French stemming (maisons)
    assert ticket_ids(find("hauser")) == [str(german.id)]  # folded (Häuser), unstemmed
    assert ticket_ids(find("haus")) == []
    assert ticket_ids(find("printer")) == [str(english.id)]  # English stemming
    assert ticket_ids(find("cafe")) == [str(english.id)]  # case and accent folding
    assert ticket_ids(find("jam")) == [str(english.id)]
    customers = frozenset({"customer"})
    for typed in ["zoe", "quix", "Quixo", "zoe.quix", "quixote supp"]:  # name, e-mail, company
        assert [h.id for h in find(typed, kinds=customers).group("customer").hits] == [
            str(zoe.pk)
        ], typed
    assert find("quix", kinds=frozenset({"ticket"})).group("ticket").count == 0  # whole words
    assert ticket_ids(find(str(german.id)[:8])) == [str(german.id)]  # a ticket id's start
    assert find("qu", kinds=customers).group("customer").count == 1
    assert find("the", kinds=customers).group("customer").count == 0  # a stop word


@pytest.mark.django_db
def test_counts_are_exact_up_to_the_cap_then_at_least(opensearch, monkeypatch):
    """As PostgreSQL (ADR 0018): up to ``RANK_ALL_UP_TO`` matches of a kind are counted
    exactly; beyond, the count is that many and says "at least", and pages end there."""
    events = Events()
    envelopes = []
    for i in range(3):
        t = Ticket.open(
            customer_id="c-count",
            subject=f"Walrus {i}",
            description="",
            actor_id="c-count",
            actor_role=Role.CUSTOMER,
        )
        envelopes += events.take(t)
    with bootstrap.opensearch_store().batch() as batch:
        batch.apply(envelopes)
    everything = find("walrus").group("ticket")
    assert (everything.count, everything.exact, len(everything.hits)) == (3, True, 3)
    monkeypatch.setattr(os_search, "RANK_ALL_UP_TO", 3)
    at_cap = find("walrus").group("ticket")
    assert (at_cap.count, at_cap.exact) == (3, True)
    monkeypatch.setattr(os_search, "RANK_ALL_UP_TO", 2)
    pages = [find("walrus", page=p, page_size=1).group("ticket") for p in (1, 2, 3)]
    assert [(g.count, g.exact, len(g.hits)) for g in pages] == [
        (2, False, 1),
        (2, False, 1),
        (2, False, 0),
    ]


def _source(store: os_search.OpenSearchSearchStore, key: str) -> dict[str, Any]:
    return store.client.get(index=store.alias, id=key)["_source"]  # type: ignore[no-any-return]


def dump(alias: str) -> dict[str, tuple[int, dict[str, Any]]]:
    client = bootstrap.opensearch_client()
    client.indices.refresh(index=alias)
    found = client.search(
        index=alias, body={"query": {"match_all": {}}, "size": 10_000, "version": True}
    )
    return {h["_id"]: (h["_version"], h["_source"]) for h in found["hits"]["hits"]}


# ------------------------------------------------------------------ log and Kafka
@pytest.mark.django_db(transaction=True)
def test_the_search_projector_on_kafka_equals_the_one_on_the_log(opensearch, topic, settings):
    generate(get_application(), tickets=12, steps=120, seed=17)
    assert "search" in bootstrap.kafka_projectors()
    assert "search" not in bootstrap.KAFKA_PROJECTORS  # not with PostgreSQL search

    bootstrap.runner("search").catch_up()
    from_log = dump(settings.OPENSEARCH_INDEX)

    settings.OPENSEARCH_INDEX = f"{settings.OPENSEARCH_INDEX}-kafka"
    relay = bootstrap.relay()
    try:
        relay.catch_up()
        # Re-deliveries (a relay crash re-publishes a batch): dropped by version.
        relay.publish(get_application().recorder.select_notifications(start=1, limit=60))
    finally:
        relay.close()
    runners = [bootstrap.kafka_runner("search") for _ in range(2)]  # two group members
    try:
        applied = sum(r.catch_up(idle=3.0) for r in runners)
        for r in runners:  # what one member consumed again after a rebalance: dropped
            r.catch_up(idle=1.0)
        from_kafka = dump(settings.OPENSEARCH_INDEX)
    finally:
        for r in runners:
            r.source.close()
        bootstrap.opensearch_store().drop()
    assert applied >= 12
    assert len(from_log) > 12
    # The same documents; a ticket's own document at the ticket's last version either way (a
    # message's document carries the version of the batch that last wrote it: batches differ).
    assert {k: source for k, (_, source) in from_kafka.items()} == {
        k: source for k, (_, source) in from_log.items()
    }
    tickets = {k: version for k, (version, _) in from_log.items() if k.startswith("ticket:")}
    assert {k: from_kafka[k][0] for k in tickets} == tickets


# ------------------------------------------------------------------ zero-downtime rebuild
@pytest.mark.django_db(transaction=True)
def test_rebuild_switches_the_alias_while_searches_and_writes_go_on(opensearch, settings):
    app = get_application()
    customer = Actor("c-rebuild", Role.CUSTOMER)
    for i in range(40):
        app.open_ticket(
            customer, customer_id=customer.id, subject=f"Kettle base {i}", description="kettle"
        )
    store = bootstrap.opensearch_store()
    runner = bootstrap.runner("search")
    runner.catch_up()
    before = store.live_index()
    stop = threading.Event()
    errors: list[BaseException] = []
    written: list[str] = []
    searches = 0

    def write() -> None:
        try:
            for n in itertools.count():
                if stop.is_set():
                    return
                word = f"zq{n}x"
                app.open_ticket(
                    customer,
                    customer_id=customer.id,
                    subject=f"Kettle {word}",
                    description="kettle",
                )
                written.append(word)
                time.sleep(0.01)
        except BaseException as error:
            errors.append(error)

    def search() -> None:
        nonlocal searches
        try:
            while not stop.is_set():
                results = find("kettle")
                if results.group("ticket").count < 40:
                    raise AssertionError(f"a search saw {results.group('ticket').count} tickets")
                searches += 1
        except BaseException as error:
            errors.append(error)

    # The live projector as it runs in production (a batch that fails, e.g. one that met
    # the swap half-way, is retried from the stored position).
    live = runtime.projector_threads(
        stop,
        upstream=bootstrap.event_source(),
        names=["search"],
        runner=bootstrap.runner,
        batch_size=100,
        interval=0.05,
    )
    threads = [*live, *(threading.Thread(target=f) for f in (write, search))]
    for t in threads:
        t.start()
    out = StringIO()
    try:
        time.sleep(0.3)
        call_command("projector", "rebuild", "search", stdout=out)
        time.sleep(0.5)  # writes and searches after the switch too
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert errors == []
    assert searches > 0
    assert written
    after = store.live_index()
    assert after != before
    assert not store.client.indices.exists(index=before)  # the old index is dropped
    assert "rebuilt and swapped in" in out.getvalue()
    runner = bootstrap.runner("search")
    runner.catch_up()
    for word in written:  # no write lost, whenever it came
        assert find(word).group("ticket").count == 1, word
    status = StringIO()
    call_command("projector", "status", stdout=status)
    assert f"alias {settings.OPENSEARCH_INDEX} -> index {after}" in status.getvalue()
    # Fed from the log (the source feed.py recorded), though its documents carry versions.
    row = next(line for line in status.getvalue().splitlines() if "│ search" in line)
    assert [c.strip() for c in row.split("│")[1:3]] == ["search", "log"]


# ------------------------------------------------------------------ OpenSearch down
@pytest.fixture
def own_opensearch(settings: Any) -> Iterator[Any]:
    """A server of this test's own, to stop: osmem-server on a free port."""
    started = osmem.start_osmem()
    if started is None:
        pytest.skip("osmem-server is not installed")
    url, proc = started
    settings.SEARCH_BACKEND = "opensearch"
    settings.OPENSEARCH_URL = url
    settings.OPENSEARCH_INDEX = "down-test"
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.terminate()
            proc.wait(10)


def client_for(user: Any, token_for: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    return client


@pytest.mark.django_db(transaction=True)
def test_opensearch_down_search_503_projector_pauses_and_resumes_commands_unaffected(
    own_opensearch, make_user, token_for, settings
):
    agent = make_user("agent")
    customer = make_user("customer")
    staff, cust = client_for(agent, token_for), client_for(customer, token_for)
    toaster, kettle = ("zq" + uuid.uuid4().hex[:10] for _ in range(2))  # only this test's
    opened = cust.post(
        "/api/tickets", {"subject": f"Toaster {toaster}", "description": "Burnt"}, format="json"
    )
    assert opened.status_code == 201
    bootstrap.runner("search").catch_up()  # the whole log so far: the default timeout
    assert staff.get("/api/search", {"q": toaster}).json()["groups"]["tickets"]["count"] == 1
    settings.OPENSEARCH_TIMEOUT = 1.0  # from here on a stopped server is noticed in a second
    store = bootstrap.opensearch_store()
    stop = threading.Event()
    threads = runtime.projector_threads(
        stop,
        upstream=bootstrap.event_source(),
        names=["search"],
        runner=bootstrap.runner,
        batch_size=100,
        interval=0.05,
    )
    for t in threads:
        t.start()
    try:
        os.kill(own_opensearch.pid, signal.SIGSTOP)  # unresponsive: requests time out
        down = staff.get("/api/search", {"q": toaster})
        assert down.status_code == 503
        assert down.json()["error"] == "search_unavailable"
        assert "unavailable" in down.json()["detail"]
        # Commands do not depend on search.
        during = cust.post(
            "/api/tickets", {"subject": f"Kettle {kettle}", "description": "Wet"}, format="json"
        )
        assert during.status_code == 201
        time.sleep(2.5)  # the projector tries, fails, waits, tries again
        assert all(t.is_alive() for t in threads)
        with pytest.raises(SearchUnavailableError):
            store.position()

        os.kill(own_opensearch.pid, signal.SIGCONT)  # back: the projector resumes
        head = bootstrap.event_source().head()
        deadline = time.monotonic() + 20
        while store.position() < head and time.monotonic() < deadline:
            time.sleep(0.1)
        assert store.position() >= head
        found = staff.get("/api/search", {"q": kettle}).json()["groups"]["tickets"]
        assert [r["id"] for r in found["results"]] == [during.json()["id"]]
    finally:
        stop.set()
        for t in threads:
            t.join(10)

    own_opensearch.terminate()  # gone for good: refused connections, still a clear 503
    own_opensearch.wait(10)
    gone = staff.get("/api/search", {"q": toaster})
    assert (gone.status_code, gone.json()["error"]) == (503, "search_unavailable")
    assert (
        cust.post(
            "/api/tickets", {"subject": "Fan", "description": "Noisy"}, format="json"
        ).status_code
        == 201
    )


# ------------------------------------------------------------------ similar tickets
@pytest.fixture(params=["postgres", "opensearch"])
def backend(request: pytest.FixtureRequest, settings: Any) -> str:
    if request.param == "opensearch":
        request.getfixturevalue("opensearch")
    return str(request.param)


@pytest.mark.django_db
def test_similar_tickets_for_staff_on_both_backends(backend, api):
    # Words only this test wrote (the log, and so the index, holds every test's tickets).
    a, b, c, d = ("zq" + uuid.uuid4().hex[:10] for _ in range(4))
    customer, cust = api("customer")
    _, agent = api("agent")
    _, admin = api("admin")

    def open_ticket(subject: str, description: str) -> str:
        r = cust.post(
            "/api/tickets", {"subject": subject, "description": description}, format="json"
        )
        assert r.status_code == 201, r.content
        return str(r.json()["id"])

    jam = open_ticket(f"{a} {b}", f"{c} {a}")
    again = open_ticket(f"{a} {b} again", f"{c} {c}")
    once = open_ticket(f"{a} once", "nothing else")
    open_ticket(f"{d} elsewhere", f"{d}")

    r = agent.get(f"/api/tickets/{jam}/similar")
    assert r.status_code == 200, r.content
    every = [hit["id"] for hit in r.json()["results"]]
    assert [i for i in every if i in (again, once)] == [again, once]  # most words in common
    assert jam not in every  # never itself
    assert r.json()["results"][0]["title"] == f"{a} {b} again"
    assert (
        admin.get(f"/api/tickets/{jam}/similar", {"limit": 1}).json()["results"][0]["id"] == again
    )

    assert cust.get(f"/api/tickets/{jam}/similar").status_code == 403  # staff only, even own
    assert agent.get(f"/api/tickets/{jam}/similar", {"limit": 0}).status_code == 400
    assert agent.get("/api/tickets/not-a-ticket/similar").status_code == 404
    unknown = agent.get(f"/api/tickets/{uuid.uuid4()}/similar")
    assert (unknown.status_code, unknown.json()["results"]) == (200, [])
    assert customer.pk  # the customer opened them all


@pytest.mark.django_db(transaction=True)
def test_the_kafka_search_projector_process_pauses_while_opensearch_is_down(
    own_opensearch, topic, settings
):
    """``manage.py projector run search --source kafka`` (docker-compose's projector-search):
    OpenSearch stops answering, the process stays up and resumes once it answers again."""
    from tests.integration.test_kafka import manage

    app = get_application()
    customer = Actor("c-pause", Role.CUSTOMER)
    words = ["zq" + uuid.uuid4().hex[:10] for _ in range(2)]

    def write(word: str) -> None:
        app.open_ticket(customer, customer_id=customer.id, subject=f"Pause {word}", description="")
        relay = bootstrap.relay()
        try:
            relay.catch_up()
        finally:
            relay.close()

    def searchable(word: str, within: float) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                if find(word).group("ticket").count == 1:
                    return True
            except SearchUnavailableError:
                pass
            time.sleep(0.2)
        return False

    proc = manage(
        topic,
        "projector",
        "run",
        "search",
        "--source",
        "kafka",
        DESKSTREAM_SEARCH_BACKEND="opensearch",
        DESKSTREAM_OPENSEARCH_URL=settings.OPENSEARCH_URL,
        DESKSTREAM_OPENSEARCH_INDEX=settings.OPENSEARCH_INDEX,
        DESKSTREAM_OPENSEARCH_TIMEOUT="1",
    )
    try:
        write(words[0])
        assert searchable(words[0], 30)
        os.kill(own_opensearch.pid, signal.SIGSTOP)
        write(words[1])
        time.sleep(4)  # batches fail, the member pauses and rejoins its group
        assert proc.poll() is None
        os.kill(own_opensearch.pid, signal.SIGCONT)
        assert searchable(words[1], 30)
        assert searchable(words[0], 1)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert b"SearchUnavailableError" in err
    assert b"retrying" in err
