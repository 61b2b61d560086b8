"""OpenSearch adapter of the search port: the projector's store and the query side.

Documents are the projector's (``projections.search``): one per ticket, message and
customer, ``_id`` = the document's key. The index is reached through an alias
(``OpenSearchSearchStore.alias``); a rebuild fills a new versioned index beside the live one
and switches the alias atomically (``shadow`` / ``swap_in``).

**Writes are versioned by the ticket.** Every document of a ticket is written with
``version_type=external`` and the version of the ticket's last event applied to it; a
ticket's document is rewritten by every event of the ticket, so its ``_version`` is the
ticket's applied version. A batch drops an event at or below it (a re-delivery: Kafka, a
second runner, the live runner meeting a rebuild), and OpenSearch itself refuses any write
older than what it holds (409, ignored): a late, duplicated or re-delivered event never
overwrites newer data, and no order across tickets is needed. A message's document carries
its ticket's status, priority, agent and tags (as in PostgreSQL, ADR 0023): when those
change, the ticket's messages (their ids are on the ticket's document, read in real time)
are rewritten with the new version. Customer documents are versioned by the time of the
customer's latest ticket (in microseconds), written at an equal version too: merged with
the stored one (``merge_customer``), they are the same whatever order the tickets came in.
Positions live in ``<alias>-positions``, one document per concrete index, also externally
versioned: they only move forward.

**Queries**: one ``_msearch`` request, one search per visible kind: the words (websearch
syntax: ``"phrases"``, ``or``, ``-excluded``) over the per-language text fields, the last
word also as a prefix of names, e-mail addresses and ticket ids; permissions and filters are
``bool`` filters inside the query. Order: score, then most recently updated, then key (as
PostgreSQL). Counts: ``track_total_hits`` up to ``RANK_ALL_UP_TO``, "at least" beyond, and
pages end there too (ADR 0018's rule).
"""

from __future__ import annotations

import html
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError, RequestError

from infra.opensearch import mappings
from infra.opensearch.client import call
from projections import search
from projections.ports import AppliedVersions, Envelope
from projections.search import (
    CUSTOMER,
    DOC_FIELDS,
    KINDS,
    MESSAGE,
    NO_AGENT,
    SIMILAR_LIMIT,
    TICKET,
    TICKET_FIELDS,
    CustomerInfo,
    Doc,
    Principal,
    SearchGroup,
    SearchHit,
    SearchQuery,
    SearchResults,
)

log = logging.getLogger(__name__)

RANK_ALL_UP_TO = 1000  # as PostgreSQL: counted exactly up to here, "at least" beyond
WHOLE_TEXT = 280  # a snippet shows a text up to this long whole, else fragments
FRAGMENT_WORDS = (8, 27)  # words before and after a fragment's first match
MAX_FRAGMENTS = 2
UPDATED_FILTER_TICKETS = 10_000  # a message's updated-date filter: at most this many tickets
COPIES = ("status", "priority", "assigned_agent_id", "tags")  # ticket fields on messages
_COPIES = frozenset(COPIES)
# Highlight markers: private-use characters no text contains, replaced by <mark> after the
# text is escaped (so only the marks are HTML).
PRE, POST = "\ue000", "\ue001"
BOOSTS = {"title": 10.0, "name": 10.0, "body": 4.0, "metadata": 2.0}
PREFIX_BOOST = 0.5
Customers = Callable[[Sequence[str]], Mapping[str, CustomerInfo]]


class EventGapError(RuntimeError):
    """A ticket's event arrived after a version gap: an event was lost upstream."""


# ---------------------------------------------------------------------------- documents
def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _micros(value: datetime) -> int:
    return int(value.timestamp() * 1_000_000)


def to_source(doc: Doc, language: str, message_ids: Sequence[str] = ()) -> dict[str, Any]:
    """A projector document as stored: the port's fields, plus the language's text fields."""
    lang = mappings.language_of(language)
    source: dict[str, Any] = {
        "key": doc["key"],
        "kind": doc["kind"],
        "ticket_id": str(doc["ticket_id"]) if doc["ticket_id"] is not None else None,
        "customer_id": doc["customer_id"],
        "internal": bool(doc["internal"]),
        "language": lang,
        "title": doc["title"],
        "body": doc["body"],
        "metadata": doc["metadata"],
        "status": doc["status"],
        "priority": doc["priority"],
        "assigned_agent_id": doc["assigned_agent_id"],
        "tags": list(doc["tags"] or []),
        "created_at": _iso(doc["created_at"]),
        "updated_at": _iso(doc["updated_at"]),
        "occurred_at": _iso(doc["occurred_at"]),
    }
    if doc["kind"] == CUSTOMER:
        source["name"] = doc["title"]  # a customer's name: folded, with prefixes
        if doc["metadata"]:
            source["contact"] = doc["metadata"]
    else:
        if doc["metadata"]:
            source["customer_text"] = doc["metadata"]
        if doc["title"]:
            source[f"title_{lang}"] = doc["title"]
        if doc["body"]:
            source[f"body_{lang}"] = doc["body"]
    if doc["kind"] == TICKET:
        source["message_ids"] = list(message_ids)
    return source


def from_source(source: Mapping[str, Any]) -> Doc:
    doc = {name: source.get(name) for name in DOC_FIELDS}
    doc["ticket_id"] = UUID(source["ticket_id"]) if source.get("ticket_id") else None
    doc["tags"] = list(source.get("tags") or [])
    for name in ("created_at", "updated_at", "occurred_at"):
        doc[name] = _time(source.get(name))
    return doc


# ---------------------------------------------------------------------------- the store
@dataclass
class _Ticket:
    doc: Doc
    version: int  # the ticket's last applied event version (0: not stored yet)
    language: str
    message_ids: list[str]
    stored_messages: int  # message_ids[:stored_messages] are in the index already


class OpenSearchSearchState:
    """``projections.search.SearchState`` for one batch: reads documents in real time
    (``_mget``), keeps the batch's changes in memory, writes them with one ``_bulk``."""

    def __init__(self, store: OpenSearchSearchStore) -> None:
        self.store = store
        self.tickets: dict[UUID, _Ticket] = {}
        self.messages: list[tuple[Doc, str]] = []  # (document, language)
        self.dirty: set[UUID] = set()
        self.copies_changed: set[UUID] = set()
        self.customer_docs: dict[str, Doc] = {}
        self.customers: dict[str, CustomerInfo | None] = {}
        self.languages: dict[UUID, str] = {}  # TicketOpened's language, for upsert_ticket

    # ------------------------------------------------------------ SearchState
    def ticket(self, ticket_id: UUID) -> Doc | None:
        held = self.tickets.get(ticket_id)
        return held.doc if held is not None else None

    def upsert_ticket(self, doc: Doc) -> None:
        ticket_id: UUID = doc["ticket_id"]
        held = self.tickets.get(ticket_id)
        if held is None:
            language = self.languages.get(ticket_id, "en")
            self.tickets[ticket_id] = _Ticket(doc, 0, language, [], 0)
        else:
            held.doc = doc
        self.dirty.add(ticket_id)

    def add_message(self, doc: Doc) -> None:
        held = self.tickets[doc["ticket_id"]]
        message_id = doc["key"].split(":", 1)[1]
        if message_id not in held.message_ids:
            held.message_ids.append(message_id)
        self.messages.append((doc, held.language))

    def set_ticket_fields(self, ticket_id: UUID, **fields: Any) -> None:
        if not fields.keys() <= TICKET_FIELDS:
            unknown = ", ".join(sorted(fields.keys() - TICKET_FIELDS))
            raise ValueError(f"Not ticket filter fields: {unknown}")
        held = self.tickets.get(ticket_id)
        if held is None:
            return
        held.doc = {**held.doc, **fields}
        self.dirty.add(ticket_id)
        if not _COPIES.isdisjoint(fields):
            self.copies_changed.add(ticket_id)

    def customer(self, customer_id: str) -> CustomerInfo | None:
        if customer_id not in self.customers:
            self._load_customers([customer_id])
        return self.customers.get(customer_id)

    def upsert_customer(self, doc: Doc) -> None:
        new = {**doc, "tags": list(doc["tags"])}
        self.customer_docs[doc["key"]] = search.merge_customer(
            self.customer_docs.get(doc["key"]), new
        )

    # ------------------------------------------------------------ batching
    def version(self, ticket_id: UUID) -> int:
        held = self.tickets.get(ticket_id)
        return held.version if held is not None else 0

    def preload(self, envelopes: Sequence[Envelope]) -> None:
        ids = {
            e.aggregate_id
            for e in envelopes
            if getattr(type(e.event), "TOPIC", "").startswith(search.TICKET_TOPICS)
        } - self.tickets.keys()
        if ids:
            for found in self.store.mget([f"{TICKET}:{i}" for i in ids]):
                source = found["_source"]
                ids_ = list(source.get("message_ids") or [])
                self.tickets[UUID(source["ticket_id"])] = _Ticket(
                    from_source(source),
                    int(found["_version"]),
                    source.get("language") or "en",
                    ids_,
                    len(ids_),
                )
        customers = {getattr(e.event, "customer_id", None) for e in envelopes}
        self._load_customers([c for c in customers if c and c not in self.customers])

    def _load_customers(self, customer_ids: list[str]) -> None:
        if not customer_ids:
            return
        found = self.store.customers(customer_ids)
        for customer_id in customer_ids:
            self.customers[customer_id] = found.get(customer_id)

    def applied(self, ticket_id: UUID, version: int) -> None:
        held = self.tickets.get(ticket_id)
        if held is not None:
            held.version = max(held.version, version)

    def flush(self) -> list[dict[str, Any]]:
        """The batch's writes, as ``_bulk`` actions (with their sources)."""
        actions: list[dict[str, Any]] = []
        # Messages stored by earlier batches whose ticket's fields changed: rewritten whole
        # (no scripts), with the ticket's version.
        earlier: list[str] = []
        for ticket_id in self.copies_changed:
            held = self.tickets[ticket_id]
            earlier += [f"{MESSAGE}:{m}" for m in held.message_ids[: held.stored_messages]]
        rewrites = [
            (from_source(found["_source"]), found["_source"].get("language") or "en")
            for found in self.store.mget(earlier)
        ]
        for doc, language in [*rewrites, *self.messages]:
            owner = self.tickets.get(doc["ticket_id"])
            version = owner.version if owner is not None else 1
            if owner is not None:
                doc = {**doc, **{name: owner.doc[name] for name in COPIES}}
            # Its own time, not its ticket's last change (as PostgreSQL).
            doc = {**doc, "updated_at": doc["occurred_at"]}
            actions.append(_index(doc["key"], to_source(doc, language), version))
        for ticket_id in self.dirty:
            held = self.tickets[ticket_id]
            source = to_source(held.doc, held.language, held.message_ids)
            actions.append(_index(held.doc["key"], source, held.version))
            held.stored_messages = len(held.message_ids)
        if self.customer_docs:
            stored = {
                found["_id"]: found["_source"]
                for found in self.store.mget(list(self.customer_docs))
            }
            for key, doc in self.customer_docs.items():
                before = stored.get(key)
                if before is not None:
                    doc = search.merge_customer(from_source(before), doc)
                # Versioned by its latest ticket's time; an equal version is written too (an
                # earlier first ticket met later): merged, it only ever gains.
                source = to_source(doc, "en")
                actions.append(_index(key, source, _micros(doc["updated_at"]), gte=True))
        self.messages.clear()
        self.dirty.clear()
        self.copies_changed.clear()
        self.customer_docs.clear()
        return actions


def _index(
    doc_id: str, source: dict[str, Any], version: int, *, gte: bool = False
) -> dict[str, Any]:
    """A ``_bulk`` index action, refused (409, ignored) below the stored version, and at it
    too unless ``gte``."""
    kind = "external_gte" if gte else "external"
    return {"_id": doc_id, "_source": source, "version": version, "version_type": kind}


class OpenSearchBatch:
    """One batch: drops events a ticket has already applied (by version), applies the rest
    through the projector, writes them with one ``_bulk``, then the position."""

    def __init__(self, store: OpenSearchSearchStore, position: int, index: str) -> None:
        self.store = store
        self.position = position
        self.index = index
        self.applied = 0
        self.state = OpenSearchSearchState(store)

    def apply(self, envelopes: Sequence[Envelope]) -> None:
        fresh = [e for e in envelopes if e.position > self.position or self.store.stream]
        if not fresh:
            return
        state = self.state
        state.preload(fresh)
        for envelope in fresh:
            event = envelope.event
            topic = getattr(type(event), "TOPIC", "")
            if topic.startswith(search.TICKET_TOPICS):
                ticket_id = envelope.aggregate_id
                have = state.version(ticket_id)
                if envelope.version <= have:
                    continue  # applied already (re-delivered)
                if envelope.version > have + 1 and not self.store.allow_gaps:
                    raise EventGapError(
                        f"ticket {ticket_id}: event version {envelope.version} after {have}"
                    )
                if topic == search.TICKET_OPENED:
                    state.languages[ticket_id] = getattr(event, "language", "en") or "en"
                search.handle(envelope, state)
                state.applied(ticket_id, envelope.version)
            self.applied += 1
        self.store.write(state.flush())
        versions = self.store.versions
        if versions is None:  # from the log: in order, so the highest position is the frontier
            self.position = max(self.position, max(e.position for e in fresh))
            return
        # From Kafka: partitions advance unevenly; the frontier is where every event below
        # is in the index (re-delivered ones included: the index has them).
        newest: dict[UUID, int] = {}
        for envelope in fresh:
            newest[envelope.aggregate_id] = max(
                newest.get(envelope.aggregate_id, 0), envelope.version
            )
        self.position = versions.record(self.store.applied_key(self.index), newest, self.position)


class OpenSearchSearchStore:
    """The search projection on OpenSearch: a ``ProjectionStore`` (the notification log),
    a ``StreamProjectionStore`` (a Kafka consumer group: ``stream=True``) and a rebuild's
    target (``shadow`` / ``swap_in``).

    ``index`` None: the live index behind ``alias`` (created, with the alias, on first use);
    a name: that concrete index (a rebuild's). ``refresh``: what a live batch's ``_bulk``
    waits for: ``"wait_for"`` (its position then means "searchable": read-your-writes with
    ``?after=``) or ``"false"`` (searchable within the refresh interval, more throughput).
    """

    def __init__(
        self,
        client: OpenSearch,
        alias: str,
        customers: Customers,
        *,
        name: str = search.NAME,
        index: str | None = None,
        refresh: str = "wait_for",
        stream: bool = False,
        versions: AppliedVersions | None = None,
    ) -> None:
        self.client = client
        self.alias = alias
        self.name = name
        self.index = index
        self.refresh = refresh
        self.stream = stream
        # Fed by Kafka: where the applied versions are kept, to tell the contiguous frontier
        # (the read-your-writes position of ``?after=``); None from the log.
        self.versions = versions
        self.customers = customers
        # A Kafka consumer may meet a ticket mid-way only if the index lost it: still loud.
        self.allow_gaps = False
        self.positions = f"{alias}-positions"

    # ------------------------------------------------------------ indexes and alias
    def live_index(self) -> str:
        """The concrete index behind the alias; created (with the alias) if there is none."""
        try:
            found = call(self.client.indices.get_alias, name=self.alias)
            return str(next(iter(found)))
        except NotFoundError:
            pass
        # The first index has a fixed name: processes starting together (the web process
        # reading a position, the projector) create it once, and the alias names one index.
        index = f"{self.alias}-0"
        try:
            self._create(index)
        except RequestError as error:
            if error.error != "resource_already_exists_exception":
                raise
            self._ensure_positions()
        else:
            # A new, empty index starts at 0, whatever position its name has: a server that
            # lost everything (osmem restarted, a new cluster) may hold one already, written
            # by a batch that was between its documents and its position when the data went
            # (the write created the positions index again). Seen while adding OpenSearch
            # restarts to the fault run (issue 22), shown by test_search_opensearch.py.
            self._ensure_positions()
            with suppress(NotFoundError):
                call(self.client.delete, index=self.positions, id=index)
        call(
            self.client.indices.update_aliases,
            body={"actions": [{"add": {"index": index, "alias": self.alias}}]},
        )
        return index

    def new_index_name(self) -> str:
        return f"{self.alias}-{time.time_ns() // 1000}"

    def _create(self, index: str, *, refresh_interval: str = mappings.REFRESH_INTERVAL) -> None:
        call(
            self.client.indices.create,
            index=index,
            body=mappings.index_body(refresh_interval=refresh_interval),
        )

    def _ensure_positions(self) -> None:
        try:
            call(self.client.indices.create, index=self.positions, body=mappings.POSITIONS_BODY)
        except RequestError as error:  # there already (another process created it)
            if error.error != "resource_already_exists_exception":
                raise

    def target(self) -> str:
        return self.index or self.live_index()

    # ------------------------------------------------------------ positions
    def position(self) -> int:
        return self._position(self.target())

    def _position(self, index: str) -> int:
        try:
            found = call(self.client.get, index=self.positions, id=index)
        except NotFoundError:
            return 0
        return int(found["_source"]["position"])

    def _set_position(self, index: str, position: int) -> None:
        try:
            call(
                self.client.index,
                index=self.positions,
                id=index,
                body={"position": position},
                params={"version": str(position), "version_type": "external_gte"},
            )
        except Exception as error:  # a newer position is stored already: keep it
            if getattr(error, "status_code", None) != 409:
                raise

    def applied_key(self, index: str) -> str:
        """The name ``versions`` keeps ``index``'s applied versions under (64 characters at
        most; an index's name ends with what tells it apart)."""
        return f"{self.name}@{index[-(63 - len(self.name)) :]}"

    def unapplied(self) -> int:
        """Fed by Kafka: how many events of the log are not in the index yet."""
        if self.versions is None:
            raise RuntimeError("unapplied() is for a store fed by Kafka (versions kept)")
        index = self.target()
        return self.versions.unapplied(self.applied_key(index), self._position(index))

    @contextmanager
    def batch(self) -> Iterator[OpenSearchBatch]:
        index = self.target()
        batch = OpenSearchBatch(self, self._position(index), index)
        before = batch.position
        yield batch
        if batch.position != before:
            self._set_position(index, batch.position)

    # ------------------------------------------------------------ reads and writes
    def read_from(self) -> str:
        return self.index or self.alias

    def mget(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        try:
            found = call(self.client.mget, index=self.read_from(), body={"ids": list(ids)})
        except NotFoundError:
            return []
        return [d for d in found["docs"] if d.get("found")]

    def write(self, actions: Sequence[dict[str, Any]]) -> None:
        if not actions:
            return
        body: list[dict[str, Any]] = []
        index = self.index or self.alias
        for action in actions:
            body.append(
                {
                    "index": {
                        "_index": index,
                        "_id": action["_id"],
                        "version": action["version"],
                        "version_type": action.get("version_type", "external"),
                    }
                }
            )
            body.append(action["_source"])
        params: dict[str, Any] = {"refresh": self.refresh if self.index is None else "false"}
        if self.index is None:
            params["require_alias"] = "true"  # never re-create an index a swap dropped
        result = call(self.client.bulk, body=body, params=params)
        if result.get("errors"):
            failed = [
                item["index"]
                for item in result["items"]
                if item["index"].get("status", 200) >= 300 and item["index"]["status"] != 409
            ]
            if failed:
                raise RuntimeError(f"OpenSearch refused {len(failed)} documents: {failed[0]}")

    # ------------------------------------------------------------ rebuild
    def shadow(self) -> OpenSearchSearchStore:
        """A new, empty index beside the live one (no refreshes while it loads)."""
        self.live_index()  # the alias exists before anything swaps it
        index = self.new_index_name()
        self._create(index, refresh_interval="-1")
        return OpenSearchSearchStore(
            self.client, self.alias, self.customers, name=self.name, index=index
        )

    def swap_in(self, shadow: OpenSearchSearchStore) -> int:
        """Point the alias at ``shadow``'s index in one atomic step, then drop the old one.
        The live runner's next batch reads the new index's position and continues from it
        (events it meets again are dropped by version)."""
        assert shadow.index is not None
        call(
            self.client.indices.put_settings,
            index=shadow.index,
            body={"index": {"refresh_interval": mappings.REFRESH_INTERVAL}},
        )
        call(self.client.indices.refresh, index=shadow.index)
        old = list(call(self.client.indices.get_alias, name=self.alias))
        actions: list[dict[str, Any]] = [{"remove": {"index": i, "alias": self.alias}} for i in old]
        actions.append({"add": {"index": shadow.index, "alias": self.alias}})
        call(self.client.indices.update_aliases, body={"actions": actions})
        for index in old:
            call(self.client.indices.delete, index=index, ignore_unavailable=True)
            with suppress(NotFoundError):
                call(self.client.delete, index=self.positions, id=index)
            if self.versions is not None:
                self.versions.forget(self.applied_key(index))
        return shadow._position(shadow.index)

    def drop(self) -> None:
        """Delete every index of this alias and its positions (tests, a reset)."""
        try:
            for index in call(self.client.indices.get_alias, name=self.alias):
                call(self.client.indices.delete, index=index)
        except NotFoundError:
            pass
        call(self.client.indices.delete, index=self.positions, ignore_unavailable=True)

    def status(self) -> dict[str, Any]:
        """The alias, its index, how many documents it holds and its position."""
        index = self.target()
        count = call(self.client.count, index=index)["count"]
        return {
            "alias": self.alias,
            "index": index,
            "documents": count,
            "position": self._position(index),
        }


# ---------------------------------------------------------------------------- queries
_TOKEN = re.compile(r'-?"[^"]*"?|\S+')
_WORD = re.compile(r"\w", re.UNICODE)
_HYPHENATED = re.compile(r"\w-\w")


@dataclass(frozen=True)
class _Term:
    text: str
    phrase: bool


def parse_websearch(text: str) -> tuple[list[list[_Term]], list[_Term]]:
    """``websearch_to_tsquery``'s syntax: words (all of them), ``"a phrase"``, ``x or y``,
    ``-excluded``. Returns (groups that must each match one of their terms, excluded terms);
    English stop words and tokens without a letter or digit are dropped, as PostgreSQL's
    ``english`` configuration drops them."""
    groups: list[list[_Term]] = []
    excluded: list[_Term] = []
    join_next = False
    for token in _TOKEN.findall(text):
        if token.lower() == "or":
            join_next = bool(groups)
            continue
        negated = token.startswith("-") and len(token) > 1
        if negated:
            token = token[1:]
        phrase = token.startswith('"')
        value = token.strip('"').strip()
        words = [
            w for w in re.findall(r"\w+", value) if w.lower() not in mappings.ENGLISH_STOP_WORDS
        ]
        if not _WORD.search(value) or not words:
            join_next = False
            continue
        # Quoted, or words joined by a hyphen ("two-factor"): a phrase, as in PostgreSQL.
        term = _Term(value, phrase or bool(_HYPHENATED.search(value)))
        if negated:
            excluded.append(term)
        elif join_next and groups:
            groups[-1].append(term)
        else:
            groups.append([term])
        join_next = False
    return groups, excluded


def _text_fields() -> list[str]:
    fields = [f"{f}^{BOOSTS['title']}" for f in mappings.text_fields("title")]
    fields += [f"name^{BOOSTS['name']}"]
    fields += [f"{f}^{BOOSTS['body']}" for f in mappings.text_fields("body")]
    fields += [f"{f}^{BOOSTS['metadata']}" for f in ("customer_text", "contact")]
    return fields


TEXT_FIELDS = _text_fields()
PREFIX_FIELDS = ["name.prefix", "contact.prefix", "ticket_id.prefix"]


def _match(term: _Term) -> dict[str, Any]:
    if term.phrase:
        return {"multi_match": {"query": term.text, "type": "phrase", "fields": TEXT_FIELDS}}
    return {
        "multi_match": {
            "query": term.text,
            "type": "best_fields",
            "operator": "and",
            "fields": TEXT_FIELDS,
        }
    }


def text_query(text: str) -> dict[str, Any] | None:
    """The words as a query, or None when nothing searchable is left."""
    groups, excluded = parse_websearch(text)
    if not groups:
        return None
    must = []
    for i, group in enumerate(groups):
        options = [_match(term) for term in group]
        last = group[-1]
        if i == len(groups) - 1 and not last.phrase and len(last.text) >= mappings.PREFIX_MIN:
            # type-ahead: the last word may be the start of a name, an e-mail, a ticket id
            options.append(
                {
                    "multi_match": {
                        "query": last.text,
                        "fields": PREFIX_FIELDS,
                        "operator": "and",
                        "boost": PREFIX_BOOST,
                    }
                }
            )
        must.append(
            options[0]
            if len(options) == 1
            else {"bool": {"should": options, "minimum_should_match": 1}}
        )
    return {"bool": {"must": must, "must_not": [_match(term) for term in excluded]}}


def _filters(query: SearchQuery, kind: str) -> list[dict[str, Any]]:
    clauses: list[dict[str, Any]] = [{"term": {"kind": kind}}]
    clauses += permission_filters(query.principal)
    if query.status:
        clauses.append({"terms": {"status": list(query.status)}})
    if query.priority:
        clauses.append({"terms": {"priority": list(query.priority)}})
    if query.agent == NO_AGENT:
        clauses.append({"bool": {"must_not": [{"exists": {"field": "assigned_agent_id"}}]}})
    elif query.agent is not None:
        clauses.append({"term": {"assigned_agent_id": query.agent}})
    for tag in query.tags:
        clauses.append({"term": {"tags": tag}})
    created = _range(query.created_from, query.created_to)
    if created:
        clauses.append({"range": {"created_at": created}})  # a message carries its ticket's
    return clauses


def permission_filters(principal: Principal) -> list[dict[str, Any]]:
    """Who sees what, inside the query: staff everything; anyone else their own tickets'
    documents and never internal notes (customer documents are left out by kind)."""
    if principal.is_staff:
        return []
    return [
        {"term": {"customer_id": principal.user_id}},
        {"term": {"internal": False}},
        {"terms": {"kind": [TICKET, MESSAGE]}},
    ]


def _range(start: datetime | None, end: datetime | None) -> dict[str, str]:
    bounds: dict[str, str] = {}
    if start is not None:
        bounds["gte"] = start.isoformat()
    if end is not None:
        bounds["lt"] = end.isoformat()
    return bounds


def _highlight() -> dict[str, Any]:
    names = [
        *mappings.text_fields("title"),
        "name",
        *mappings.text_fields("body"),
        "customer_text",
        "contact",
    ]
    return {
        "pre_tags": [PRE],
        "post_tags": [POST],
        "require_field_match": True,
        "fields": {name: {"number_of_fragments": 0} for name in names},
    }


def _pick(highlight: Mapping[str, list[str]], prefix: str, plain: str) -> str:
    """The highlighted text of field ``prefix`` (any of its ``<prefix>_<lang>`` fields; the
    metadata's ``customer_text`` or ``contact``), else the plain text."""
    names = ("customer_text", "contact") if prefix == "metadata" else None
    for name, values in highlight.items():
        match = name in names if names else name == prefix or name.startswith(prefix + "_")
        if match and values:
            return "".join(values)
    return plain


def snippet(source: Mapping[str, Any], highlight: Mapping[str, list[str]]) -> str:
    """The document's text with its matches marked: HTML, escaped, only ``<mark>`` tags.
    A text up to ``WHOLE_TEXT`` characters comes whole; a longer one as up to two
    fragments around the matches, joined by " … " (as the PostgreSQL adapter's)."""
    kind = source["kind"]
    body = _pick(highlight, "body", source.get("body") or "")
    if kind == MESSAGE:
        text = body
    else:
        title_field = "name" if kind == CUSTOMER else "title"
        title = _pick(highlight, title_field, source.get("title") or "")
        metadata = _pick(highlight, "metadata", source.get("metadata") or "")
        text = " — ".join(part for part in (title, body, metadata) if part)
    plain = text.replace(PRE, "").replace(POST, "")
    if len(plain) > WHOLE_TEXT:
        text = _fragments(text)
    return html.escape(text, quote=False).replace(PRE, "<mark>").replace(POST, "</mark>")


def _fragments(text: str) -> str:
    words = text.split()
    marked = [i for i, w in enumerate(words) if PRE in w]
    if not marked:
        return " ".join(words[: sum(FRAGMENT_WORDS)])
    before, after = FRAGMENT_WORDS
    parts: list[str] = []
    end = -1
    for i in marked:
        if i <= end:
            continue
        start, end = max(i - before, end + 1), min(i + after, len(words) - 1)
        fragment = words[start : end + 1]
        opened = sum(w.count(PRE) - w.count(POST) for w in fragment)
        if opened > 0:  # a phrase's mark runs past the fragment: close it
            fragment[-1] += POST * opened
        parts.append(" ".join(fragment))
        if len(parts) == MAX_FRAGMENTS:
            break
    return " … ".join(parts)


class OpenSearchSearchIndex:
    """``projections.search.SearchIndex`` over the alias (the live index)."""

    def __init__(self, client: OpenSearch, alias: str) -> None:
        self.client = client
        self.alias = alias

    def search(self, query: SearchQuery) -> SearchResults:
        kinds = query.visible_kinds
        words = text_query(query.text)
        if not kinds or words is None:
            return _results({}, {})
        size = max(min(query.page_size, RANK_ALL_UP_TO - query.offset), 0)
        messages_of: list[str] | None = None
        if MESSAGE in kinds and (query.updated_from or query.updated_to):
            messages_of = self._tickets_updated(query)
        body: list[dict[str, Any]] = []
        for kind in kinds:
            filters = _filters(query, kind)
            updated = _range(query.updated_from, query.updated_to)
            if updated and kind == MESSAGE:
                filters.append({"terms": {"ticket_id": messages_of or []}})
            elif updated:
                filters.append({"range": {"updated_at": updated}})
            body.append({"index": self.alias})
            body.append(
                {
                    "query": {"bool": {"must": [words], "filter": filters}},
                    "sort": [{"_score": "desc"}, {"updated_at": "desc"}, {"key": "asc"}],
                    "from": query.offset if size else 0,
                    "size": size,
                    "track_total_hits": RANK_ALL_UP_TO,
                    "highlight": _highlight(),
                }
            )
        try:
            answer = call(self.client.msearch, body=body)
        except NotFoundError:
            return _results({}, {})  # no index yet: nothing is searchable
        groups: dict[str, dict[str, Any]] = {}
        for kind, response in zip(kinds, answer["responses"], strict=True):
            if "error" in response:
                status = response.get("status", 500)
                if status == 404:
                    continue
                raise search.SearchUnavailableError(f"OpenSearch failed: {response['error']}")
            groups[kind] = response["hits"]
        return _results(groups, self._tickets_of(groups.get(MESSAGE, {}).get("hits", [])))

    def _tickets_updated(self, query: SearchQuery) -> list[str]:
        """The tickets a message's updated-date filter admits (the ticket's last change is
        on the ticket's document only): up to ``UPDATED_FILTER_TICKETS`` of them."""
        filters = _filters(query, TICKET)
        filters.append({"range": {"updated_at": _range(query.updated_from, query.updated_to)}})
        found = call(
            self.client.search,
            index=self.alias,
            body={
                "query": {"bool": {"filter": filters}},
                "_source": ["ticket_id"],
                "size": UPDATED_FILTER_TICKETS,
            },
        )
        return [hit["_source"]["ticket_id"] for hit in found["hits"]["hits"]]

    def _tickets_of(self, hits: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """The ticket documents of message hits: a message shows its ticket's current
        subject and fields."""
        keys = sorted({f"{TICKET}:{h['_source']['ticket_id']}" for h in hits})
        if not keys:
            return {}
        found = call(self.client.mget, index=self.alias, body={"ids": keys})
        return {d["_source"]["ticket_id"]: d["_source"] for d in found["docs"] if d.get("found")}

    def similar(
        self, ticket_id: UUID, principal: Principal, limit: int = SIMILAR_LIMIT
    ) -> tuple[SearchHit, ...]:
        """``more_like_this`` on the ticket's subject and description, tickets only."""
        key = f"{TICKET}:{ticket_id}"
        filters = [{"term": {"kind": TICKET}}, *permission_filters(principal)]
        fields = [*mappings.text_fields("title"), *mappings.text_fields("body")]
        try:
            found = call(
                self.client.search,
                index=self.alias,
                body={
                    "query": {
                        "bool": {
                            "must": [
                                {
                                    "more_like_this": {
                                        "fields": fields,
                                        "like": [{"_index": self.alias, "_id": key}],
                                        "min_term_freq": 1,
                                        "min_doc_freq": 1,
                                        "max_query_terms": 25,
                                        "minimum_should_match": "1",
                                    }
                                }
                            ],
                            "filter": filters,
                            "must_not": [{"ids": {"values": [key]}}],
                        }
                    },
                    "sort": [{"_score": "desc"}, {"updated_at": "desc"}, {"key": "asc"}],
                    "size": limit,
                },
            )
        except NotFoundError:
            return ()
        return tuple(
            _hit(h["_source"], _plain_snippet(h["_source"]), None) for h in found["hits"]["hits"]
        )


def _plain_snippet(source: Mapping[str, Any]) -> str:
    return snippet(source, {})


def _hit(source: Mapping[str, Any], text: str, ticket: Mapping[str, Any] | None) -> SearchHit:
    kind = source["kind"]
    shown = ticket if ticket is not None else source
    return SearchHit(
        kind=kind,
        id=source["key"].split(":", 1)[1],
        ticket_id=UUID(source["ticket_id"]) if source.get("ticket_id") else None,
        customer_id=source["customer_id"],
        title=(ticket or {}).get("title", "") if kind == MESSAGE else source["title"],
        snippet=text,
        internal=bool(source.get("internal")),
        status=shown.get("status"),
        priority=shown.get("priority"),
        assigned_agent_id=(ticket or {}).get("assigned_agent_id")
        if kind == MESSAGE
        else source.get("assigned_agent_id"),
        tags=tuple(shown.get("tags") or ()),
        created_at=_time(source.get("created_at")),
        updated_at=_time(shown.get("updated_at")),
        occurred_at=_time(source.get("occurred_at")),
    )


def _results(
    groups: Mapping[str, Mapping[str, Any]], tickets: Mapping[str, Mapping[str, Any]]
) -> SearchResults:
    out: dict[str, SearchGroup] = {}
    for kind in KINDS:
        found = groups.get(kind)
        if found is None:
            out[kind] = SearchGroup(0)
            continue
        total = found["total"]
        hits = []
        for h in found["hits"]:
            source = h["_source"]
            ticket = tickets.get(source.get("ticket_id") or "") if kind == MESSAGE else None
            hits.append(_hit(source, snippet(source, h.get("highlight") or {}), ticket))
        exact = total["relation"] == "eq"
        out[kind] = SearchGroup(min(int(total["value"]), RANK_ALL_UP_TO), tuple(hits), exact=exact)
    return SearchResults(out)
