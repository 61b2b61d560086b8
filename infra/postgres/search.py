"""PostgreSQL full-text adapter of the search port: ``rm_search_doc`` (tsvector + GIN index).

``PostgresSearchState`` is the projector's batched ``SearchState``: a batch loads the ticket
documents and customers its events touch with one query each, lets the projector change them
in memory, then writes documents with one multi-row statement per kind, one UPDATE of the
ticket documents whose filter fields changed and one of their messages' documents. A
message's document carries its ticket's status, priority, agent and tags
(``MESSAGE_COPIES``), so a filtered search checks it on its own row (ADR 0023); a rebuild
writes each message's document once, with its ticket's final fields (``STAGED``). The
``document`` vector is computed in SQL: title weight A, body B, customer metadata C.

``PostgresSearchIndex`` answers ``SearchQuery``: ``websearch_to_tsquery`` over the GIN index,
``ts_rank_cd`` for the order, ``ts_headline`` for snippets (of the page's rows only).
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from django.db import connection
from psycopg import sql

from domain.numbers import parse_natural
from infra.postgres.bulk import (
    IGNORE_CONFLICTS,
    insert_rows,
    select_rows,
    select_sql,
    update_on_conflict,
    update_rows,
)
from projections import search
from projections.ports import Envelope
from projections.search import (
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
    merge_customer,
)

TABLE = "rm_search_doc"
TABLES = [TABLE]
# Built after a rebuild's bulk load, not during it (``PostgresProjectionStore``): the
# batches look documents up by key only.
DEFERRED_INDEXES = [
    "rm_search_doc_fts",
    "rm_search_doc_fts_ticket",
    "rm_search_doc_fts_customer",
    "rm_search_doc_ticket",
    "rm_search_doc_customer",
    "rm_search_doc_recent",
    "rm_search_doc_ticket_agent",
    "rm_search_doc_ticket_status",
    "rm_search_doc_ticket_tags",
    "rm_search_doc_message_agent",
    "rm_search_doc_message_status",
    "rm_search_doc_message_tags",
]
CONFIG = "english"  # the text-search configuration of documents and queries alike
# ts_rank_cd weights, in PostgreSQL's order {D, C, B, A}.
WEIGHTS = "{0.1, 0.2, 0.4, 1.0}"
# Up to this many matches of a kind, every one is counted and scored; beyond, the newest
# this many (pages end there, and the count says "at least"): a very common word costs a
# bounded read, not one of every match (ADR 0018).
RANK_ALL_UP_TO = 1000
# Finding the newest RANK_ALL_UP_TO matches of a kind with thousands reads every match,
# unless the search looks at the newest documents first: about the newest 2% of the
# documents, then the next 6%, 17%, the rest (bounds from the planner's statistics of
# ``occurred_at``), each window a GIN x recency-index bitmap, stopping once it has enough.
WINDOWS = (0.02, 0.08, 0.25)
WINDOWED_KINDS = (MESSAGE,)
WINDOWS_TTL = 60.0  # seconds a process keeps the window bounds
# Snippets: a text up to WHOLE_TEXT characters comes whole; a longer one as up to two
# fragments around the matches (fragment mode alone trims even short texts to the match).
WHOLE_TEXT = 280
HEADLINE_WHOLE = "StartSel=<mark>, StopSel=</mark>, HighlightAll=true"
HEADLINE_FRAGMENTS = (
    "StartSel=<mark>, StopSel=</mark>, MaxWords=35, MinWords=12, ShortWord=3, "
    'MaxFragments=2, FragmentDelimiter=" … "'
)
# Customers are accounts (``infra.auth``), read here by table name: adapters do not import
# each other (import-linter), and these are the tables that app's migrations create.
USER_TABLE = "accounts_user"
PROFILE_TABLE = "accounts_customerprofile"

COLUMNS = list(DOC_FIELDS)
_CONFIG = sql.Literal(CONFIG) + sql.SQL("::regconfig")
_VECTOR = sql.SQL(
    "setweight(to_tsvector({c}, {title}), 'A') || setweight(to_tsvector({c}, {body}), 'B')"
    " || setweight(to_tsvector({c}, {metadata}), 'C')"
)


def _vector(title: sql.Composable, body: sql.Composable, metadata: sql.Composable) -> sql.Composed:
    return _VECTOR.format(c=_CONFIG, title=title, body=body, metadata=metadata)


# The ``document`` column of rows inserted with ``bulk.insert_rows`` (over their values ``u``).
_DOCUMENT = {"document": _vector(sql.SQL("u.title"), sql.SQL("u.body"), sql.SQL("u.metadata"))}


# The ticket's filter fields that its messages' documents carry too, kept current, so that a
# filtered search checks a message on its own row (its own indexes) instead of joining every
# match of its words to the ticket's document (ADR 0023). Not ``updated_at``: it changes
# with every message, and the date filters still read the ticket's document.
MESSAGE_COPIES = ("status", "priority", "assigned_agent_id", "tags")
_COPIES = frozenset(MESSAGE_COPIES)
_MESSAGES_ONLY = sql.SQL("d.kind = {}").format(sql.Literal(MESSAGE))
# A bulk load (``BulkState``) of an empty copy stages its message documents in a temporary
# table while the tickets may still change; ``flush`` moves them in with their tickets'
# final fields, each row written once (an UPDATE afterwards would leave every message row
# twice in the table).
STAGED = "search_messages_staged"


def _replace_all() -> sql.Composed:
    return update_on_conflict("key", [*COLUMNS, "document"])


@functools.cache
def _refresh_customer(table: str) -> sql.Composed:
    """The stored customer document merged as ``merge_customer`` merges it: the first
    ticket's times, the latest ticket's ``updated_at`` (on a customer document
    ``occurred_at`` is ``created_at``), whatever order they were written in."""
    return update_on_conflict("key", ["title", "body", "metadata", "document"]) + sql.SQL(
        ", created_at = LEAST({t}.created_at, EXCLUDED.created_at),"
        " occurred_at = LEAST({t}.occurred_at, EXCLUDED.occurred_at),"
        " updated_at = GREATEST({t}.updated_at, EXCLUDED.updated_at)"
    ).format(t=sql.Identifier(table))


def _copy(doc: Doc) -> Doc:
    out = dict(doc)
    out["tags"] = list(doc["tags"])
    return out


# A bulk load (``BulkState``) keeps at most this many ticket documents in memory; past it, it
# writes them all and reads them back as batches do.
BULK_TICKETS_IN_MEMORY = 200_000
BULK_CUSTOMERS_PREFETCH = 200_000  # accounts a bulk load reads up front


class PostgresSearchState:
    """``projections.search.SearchState`` over ``rm_search_doc`` (or its rebuild copy).

    Also a ``BulkState``: loading an empty copy, a ticket's document is written once at the
    end with its final fields (not rewritten by every batch that changes them); message
    documents are written as they come (``take_settled``).
    """

    complete = False  # True: the table held nothing when this state began (a bulk load)

    def __init__(self, cursor: Any, suffix: str = "") -> None:
        self.cur = cursor
        self.table = TABLE + suffix
        # Tickets are keyed by ``UUID.int``: ``UUID.__hash__`` is Python code, run on every
        # lookup of a freshly decoded id (a tenth of a rebuild's CPU when keyed by the UUIDs).
        self._tickets: dict[int, Doc] = {}
        self._stored: set[int] = set()  # tickets whose documents exist in the table
        self._dirty: set[int] = set()  # ticket documents to write whole (new, or text changed)
        self._fields_changed: set[int] = set()  # stored tickets whose documents need the fields
        # tickets whose stored message documents need the fields (``MESSAGE_COPIES``)
        self._copies_changed: set[int] = set()
        self._with_messages: set[int] = set()  # tickets with message documents in the table
        self._messages: list[Doc] = []
        self._staged = False  # message documents wait in STAGED (a bulk load of an empty copy)
        self._customer_docs: dict[str, Doc] = {}
        self._customers: dict[str, CustomerInfo | None] = {}
        self._prefetched = False

    # ------------------------------------------------------------ SearchState
    def ticket(self, ticket_id: UUID) -> Doc | None:
        return self._tickets.get(ticket_id.int)  # read-only for the caller (the port says)

    def upsert_ticket(self, doc: Doc) -> None:
        key = doc["ticket_id"].int
        self._tickets[key] = doc  # handed over (the port says): no copy per event
        self._dirty.add(key)

    def add_message(self, doc: Doc) -> None:
        self._messages.append(doc)

    def set_ticket_fields(self, ticket_id: UUID, **fields: Any) -> None:
        if not fields.keys() <= TICKET_FIELDS:
            unknown = ", ".join(sorted(fields.keys() - TICKET_FIELDS))
            raise ValueError(f"Not ticket filter fields: {unknown}")
        key = ticket_id.int
        doc = self._tickets.get(key)
        if doc is None:
            return
        doc.update(fields)
        if not self.complete and not _COPIES.isdisjoint(fields) and key in self._with_messages:
            self._copies_changed.add(key)
        if key in self._stored:
            self._fields_changed.add(key)  # one UPDATE, the text (and vector) stays
        else:
            self._dirty.add(key)

    def customer(self, customer_id: str) -> CustomerInfo | None:
        if customer_id not in self._customers:
            self._load_customers([customer_id])
        return self._customers.get(customer_id)

    def upsert_customer(self, doc: Doc) -> None:
        self._customer_docs[doc["key"]] = merge_customer(
            self._customer_docs.get(doc["key"]), _copy(doc)
        )

    # ------------------------------------------------------------ batching
    def preload(self, envelopes: Sequence[Envelope]) -> None:
        if self.complete and not self._prefetched:
            self._prefetch_customers()
        ids = {} if self.complete else {e.aggregate_id.int: e.aggregate_id for e in envelopes}
        wanted = [ids[i] for i in ids.keys() - self._tickets.keys()]
        if wanted:
            keys = [f"{TICKET}:{i}" for i in wanted]
            for values in select_rows(
                self.cur, select_sql(self.table, COLUMNS, "key = ANY(%s)"), [keys]
            ):
                doc = dict(zip(COLUMNS, values, strict=True))
                doc["tags"] = list(doc["tags"] or [])
                self._tickets[doc["ticket_id"].int] = doc
                self._stored.add(doc["ticket_id"].int)
                self._with_messages.add(doc["ticket_id"].int)  # it may have some
        customers = {getattr(e.event, "customer_id", None) for e in envelopes}
        self._load_customers([c for c in customers if c and c not in self._customers])

    def _prefetch_customers(self) -> None:
        """A bulk load reads the accounts once, up to a limit, instead of a query per batch
        that meets new customers (each of which would wait for the write in flight); the
        ones past the limit, or signed up since, are read as batches read them."""
        self._prefetched = True
        self._read_customers("ORDER BY u.id LIMIT %s", [BULK_CUSTOMERS_PREFETCH])

    def _load_customers(self, customer_ids: list[str]) -> None:
        for customer_id in customer_ids:
            self._customers[customer_id] = None
        # Account ids are integers; ids of other shapes (imported, test data) have no account.
        numeric = [n for n in map(parse_natural, customer_ids) if n is not None]
        if numeric:
            self._read_customers("WHERE u.id = ANY(%s)", [numeric])

    def _read_customers(self, which: str, params: list[Any]) -> None:
        self.cur.execute(
            sql.SQL(
                "SELECT u.id, u.first_name, u.last_name, u.email,"
                " coalesce(p.company, ''), coalesce(p.phone, '')"
                " FROM {users} u LEFT JOIN {profiles} p ON p.user_id = u.id "
            )
            .format(users=sql.Identifier(USER_TABLE), profiles=sql.Identifier(PROFILE_TABLE))
            .as_string(None)
            + which,
            params,
        )
        for user_id, first, last, email, company, phone in self.cur.fetchall():
            name = f"{first} {last}".strip() or email
            self._customers[str(user_id)] = CustomerInfo(name, email, company, phone)

    def take_settled(self) -> Callable[[Any], None] | None:
        if len(self._tickets) > BULK_TICKETS_IN_MEMORY:
            self.flush()  # everything, now (rare): then read back what later batches touch
            self._tickets.clear()
            self._stored.clear()
            self.complete = False
            return None
        messages, self._messages = self._messages, []
        if not messages:
            return None
        table = self.table
        if self.complete:
            # Their tickets may still change: staged, and moved in by ``flush``.
            first, self._staged = not self._staged, True

            def stage(cursor: Any) -> None:
                if first:
                    cursor.execute(
                        sql.SQL("CREATE TEMP TABLE {} (LIKE {}) ON COMMIT DROP")
                        .format(sql.Identifier(STAGED), sql.Identifier(table))
                        .as_string(None)
                    )
                _write_messages(cursor, STAGED, messages)

            return stage
        # The fields as they are now (the next chunk changes the tickets while this writes);
        # later changes update these documents (``_copies_changed``).
        _copy_fields(messages, self._tickets)
        self._with_messages.update(m["ticket_id"].int for m in messages)

        def write(cursor: Any) -> None:
            _write_messages(cursor, table, messages)

        return write

    def flush(self) -> None:
        # Filter fields first, on the documents stored before this batch (the ticket's own and
        # its messages'); the documents written below already carry the latest fields.
        update_rows(
            self.cur,
            self.table,
            "key",
            sorted(TICKET_FIELDS),
            [self._tickets[i] for i in self._fields_changed],
        )
        # The stored messages of tickets whose copied fields changed; the ones written below
        # get the current fields as they are written.
        update_rows(
            self.cur,
            self.table,
            "ticket_id",
            MESSAGE_COPIES,
            [self._tickets[i] for i in self._copies_changed if i in self._tickets],
            where=_MESSAGES_ONLY,
        )
        insert_rows(
            self.cur,
            self.table,
            COLUMNS,
            [self._tickets[i] for i in self._dirty],
            on_conflict=_replace_all(),
            computed=_DOCUMENT,
        )
        _copy_fields(self._messages, self._tickets)
        self._with_messages.update(m["ticket_id"].int for m in self._messages)
        _write_messages(self.cur, self.table, self._messages)
        if self._staged:
            self._move_staged()
        insert_rows(
            self.cur,
            self.table,
            COLUMNS,
            list(self._customer_docs.values()),
            on_conflict=_refresh_customer(self.table),
            computed=_DOCUMENT,
        )
        self._stored |= self._dirty
        self._dirty.clear()
        self._fields_changed.clear()
        self._copies_changed.clear()
        self._messages.clear()
        self._customer_docs.clear()

    def _move_staged(self) -> None:
        """The staged message documents into the table, with their tickets' fields as the
        ticket documents (written just before) hold them; vectors as computed when staged."""
        self._staged = False
        self.cur.execute(_move_staged_sql(self.table))
        self._with_messages.update(self._tickets)


@functools.cache
def _move_staged_sql(table: str) -> str:
    # A message whose ticket has no document keeps the fields it was staged with.
    values = [
        sql.SQL(
            "CASE WHEN tk.key IS NULL THEN s.{0} ELSE tk.{0} END" if c in _COPIES else "s.{0}"
        ).format(sql.Identifier(c))
        for c in COLUMNS
    ]
    return (
        sql.SQL(
            "INSERT INTO {t} ({columns}, document) SELECT {values}, s.document"
            " FROM {staged} s LEFT JOIN {t} tk ON tk.key = {prefix} || s.ticket_id::text"
            " ON CONFLICT DO NOTHING; DROP TABLE {staged}"
        )
        .format(
            t=sql.Identifier(table),
            columns=sql.SQL(", ").join(map(sql.Identifier, COLUMNS)),
            values=sql.SQL(", ").join(values),
            staged=sql.Identifier(STAGED),
            prefix=sql.Literal(f"{TICKET}:"),
        )
        .as_string(None)
    )


def _copy_fields(messages: list[Doc], tickets: dict[int, Doc]) -> None:
    """Give each message document its ticket's current ``MESSAGE_COPIES``."""
    for message in messages:
        ticket = tickets.get(message["ticket_id"].int)
        if ticket is not None:
            for name in MESSAGE_COPIES:
                message[name] = ticket[name]


def _write_messages(cursor: Any, table: str, messages: list[Doc]) -> None:
    for message in messages:
        # Its own time, not its ticket's last change: that one changes with every message
        # (results and the date filters read it from the ticket's document).
        message["updated_at"] = message["occurred_at"]
    insert_rows(cursor, table, COLUMNS, messages, on_conflict=IGNORE_CONFLICTS, computed=_DOCUMENT)


def handler(envelope: Envelope, state: Any) -> None:
    search.handle(envelope, state)


# -------------------------------------------------------------------------------- queries
_RESULT_COLUMNS = [
    "kind", "key", "ticket_id", "customer_id", "internal", "title", "snippet", "status",
    "priority", "assigned_agent_id", "tags", "created_at", "updated_at", "occurred_at",
]  # fmt: skip


def _escape_html(expression: sql.Composable) -> sql.Composed:
    # The snippet is HTML (the <mark> tags): escape the text first, so that only they are.
    return sql.SQL("replace(replace(replace({}, '&', '&amp;'), '<', '&lt;'), '>', '&gt;')").format(
        expression
    )


def _windows(n: int) -> list[sql.Composable]:
    """``n`` bounds, newest first, cut the time axis into ``n + 1`` disjoint windows."""
    windows: list[sql.Composable] = [sql.SQL(" AND d.occurred_at >= %(bound0)s")]
    for i in range(1, n):
        windows.append(
            sql.SQL(" AND d.occurred_at >= {} AND d.occurred_at < {}").format(
                sql.Placeholder(f"bound{i}"), sql.Placeholder(f"bound{i - 1}")
            )
        )
    windows.append(
        sql.SQL(" AND (d.occurred_at < {} OR d.occurred_at IS NULL)").format(
            sql.Placeholder(f"bound{n - 1}")
        )
    )
    return windows


# A run of minus signs with only separators between them ("--x", "- - x", "(-(-x"): each is
# a NOT to ``websearch_to_tsquery``, which nests them on a stack of 32 ("tsquery stack too
# small" from the 33rd on).
_NEGATIONS = re.compile(r'-[^\w"]*(?:-[^\w"]*)+')


def websearch_text(text: str) -> str:
    """The search words as ``websearch_to_tsquery`` reads them, with every run of negations
    cut to what it means: an odd number is one NOT, an even number none."""

    def one_or_none(run: re.Match[str]) -> str:
        return " -" if run.group().count("-") % 2 else " "

    return _NEGATIONS.sub(one_or_none, text)


T = TypeVar("T")


class _PerTable(Generic[T]):
    """A value per table read from the planner's statistics: free to read, kept for
    ``WINDOWS_TTL`` seconds."""

    def __init__(self, read: Callable[[str], T]) -> None:
        self._read = read
        self._values: dict[str, tuple[float, T]] = {}

    def get(self, table: str) -> T:
        now = time.monotonic()
        cached = self._values.get(table)
        if cached and now - cached[0] < WINDOWS_TTL:
            return cached[1]
        value = self._read(table)
        self._values[table] = (now, value)
        return value

    def clear(self) -> None:
        self._values.clear()


# Text that ``websearch_to_tsquery`` makes a phrase of: quotes, or words joined by a hyphen.
_PHRASE = re.compile(r'"|\w-\w')


def recency_bounds(table: str) -> list[datetime]:
    """The times that leave about the newest ``WINDOWS`` shares of the documents after them.

    From the planner's statistics of ``occurred_at`` (most common values and histogram, kept
    by ANALYZE), so free to read; cached for ``WINDOWS_TTL`` seconds. No statistics yet: no
    windows (every search still right, a very common word just slower).
    """
    return _bounds_cache.get(table)


def _read_recency_bounds(table: str) -> list[datetime]:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT null_frac, most_common_vals::text::timestamptz[], most_common_freqs,"
            " histogram_bounds::text::timestamptz[] FROM pg_stats"
            " WHERE schemaname = current_schema() AND tablename = %s AND attname = 'occurred_at'",
            [table],
        )
        row = cur.fetchone()
    return _bounds_from_stats(*row) if row else []


_bounds_cache = _PerTable(_read_recency_bounds)


def _bounds_from_stats(
    null_frac: float,
    common: list[datetime] | None,
    common_freqs: list[float] | None,
    histogram: list[datetime] | None,
) -> list[datetime]:
    # Mass at or after each value: a common value its own frequency, a histogram bucket the
    # rest spread evenly (at its lower bound). Walk from the newest until each share is in.
    points = list(zip(common or [], common_freqs or [], strict=True))
    if histogram and len(histogram) > 1:
        spread = (1.0 - null_frac - sum(common_freqs or [])) / (len(histogram) - 1)
        points += [(value, spread) for value in histogram[:-1]]
    points.sort(reverse=True)
    bounds: list[datetime] = []
    shares = iter(WINDOWS)
    share = next(shares, None)
    seen = 0.0
    for value, mass in points:
        seen += mass
        while share is not None and seen >= share - 1e-9:
            if not bounds or value < bounds[-1]:
                bounds.append(value)
            share = next(shares, None)
        if share is None:
            break
    return bounds


# Similar tickets (``PostgresSearchIndex.similar``): a ticket is described by at most
# SIMILAR_TERMS of its words, the rarest ones, each weighed 1 + ln(1 / share of the documents
# that have it), as an inverse document frequency; words in more than SIMILAR_MAX_SHARE of
# the documents say little about a ticket and are left out while rarer ones remain. The
# candidates are the tickets with any of its rarest words, as many words as keep the
# expected number of such tickets within SIMILAR_CANDIDATES (at least one word), and of
# those found the newest SIMILAR_CANDIDATES (the estimate is the whole table's, and words
# can be commoner among tickets than among messages): a bounded read from the GIN index,
# whatever the ticket says; each candidate is scored with all the words.
SIMILAR_TERMS = 16
SIMILAR_MAX_SHARE = 0.1
# Tickets the finding words may be expected to find, and of those they find, the newest this
# many are scored (measured: 500 scored cost as much CPU and were further from the real
# replies, docs/benchmarks.md).
SIMILAR_CANDIDATES = RANK_ALL_UP_TO


@dataclass(frozen=True)
class LexemeStats:
    """From the planner's statistics of a search table: the share of the documents that has
    each of the most common lexemes, the share below which a lexeme is not listed, and how
    many ticket documents there are (estimated). Empty before the first ANALYZE."""

    shares: dict[str, float] = field(default_factory=dict)
    floor: float = 0.0
    tickets: float = 0.0


def lexeme_stats(table: str) -> LexemeStats:
    """``LexemeStats`` of ``table``: ANALYZE keeps the most common elements of a tsvector
    column, the most common values of ``kind`` and the row count; free to read, cached for
    ``WINDOWS_TTL`` seconds."""
    return _stats_cache.get(table)


def _read_lexeme_stats(table: str) -> LexemeStats:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT s.attname, s.most_common_elems::text::text[], s.most_common_elem_freqs,"
            " s.most_common_vals::text::text[], s.most_common_freqs, c.reltuples"
            " FROM pg_stats s JOIN pg_class c ON c.relname = s.tablename"
            " AND c.relnamespace = to_regnamespace(s.schemaname)"
            " WHERE s.schemaname = current_schema() AND s.tablename = %s"
            " AND s.attname IN ('document', 'kind')",
            [table],
        )
        rows = {row[0]: row[1:] for row in cur.fetchall()}
    stats = LexemeStats()
    document, kind = rows.get("document"), rows.get("kind")
    if document and document[0] and document[1]:
        lexemes, freqs = document[0], document[1]
        # After one frequency per element come the lowest and highest of them and the share
        # of empty documents (pg_stats).
        kinds = dict(zip(kind[2] or [], kind[3] or [], strict=True)) if kind else {}
        stats = LexemeStats(
            shares=dict(zip(lexemes, freqs[: len(lexemes)], strict=True)),
            floor=float(freqs[len(lexemes)]),
            tickets=max(float(document[4]), 0.0) * kinds.get(TICKET, 0.0),
        )
    return stats


_stats_cache = _PerTable(_read_lexeme_stats)


@dataclass(frozen=True)
class Terms:
    """What ``similar`` looks for: the words with their weights, rarest first, and how many
    of the first ones find the candidates."""

    lexemes: list[str]
    weights: list[float]
    finding: int


def distinctive_terms(lexemes: Sequence[str], stats: LexemeStats) -> Terms:
    """The lexemes that describe a text best, rarest first: at most ``SIMILAR_TERMS``, none
    in more than ``SIMILAR_MAX_SHARE`` of the documents unless nothing rarer is left. A
    lexeme the statistics do not list is rarer than the least common they do (half of it is
    assumed); with no statistics every lexeme weighs the same, and all find candidates."""
    unlisted = stats.floor / 2
    ranked = sorted((stats.shares.get(lexeme, unlisted), lexeme) for lexeme in set(lexemes))
    chosen = [(share, lexeme) for share, lexeme in ranked if share <= SIMILAR_MAX_SHARE]
    chosen = (chosen or ranked)[:SIMILAR_TERMS]
    finding, expected = 0, 0.0
    for share, _ in chosen:
        expected += share * stats.tickets  # at most: tickets with several are counted again
        if finding and expected > SIMILAR_CANDIDATES:
            break
        finding += 1
    return Terms(
        lexemes=[lexeme for _, lexeme in chosen],
        weights=[1.0 + math.log(1.0 / share) if share > 0 else 1.0 for share, _ in chosen],
        finding=finding,
    )


class PostgresSearchIndex:
    """``projections.search.SearchIndex`` over the live ``rm_search_doc``."""

    def __init__(self, table: str = TABLE) -> None:
        self.table = table

    def search(self, query: SearchQuery) -> SearchResults:
        kinds = query.visible_kinds
        if not kinds:
            return _results({}, [])
        params: dict[str, Any] = {"text": websearch_text(query.text)}
        t = sql.Identifier(self.table)
        # A message's document carries its ticket's status, priority, agent and tags
        # (``MESSAGE_COPIES``); the ticket's dates live on the ticket's document only, so a
        # date filter joins each message to it. A ticket's document is its own (customers
        # have no ticket).
        dated = _has_date_filters(query)
        join = (
            sql.SQL(" JOIN {t} tk ON tk.key = {prefix} || d.ticket_id::text").format(
                t=t, prefix=sql.Literal(f"{TICKET}:")
            )
            if dated
            else sql.SQL("")
        )
        # Per kind, the newest RANK_ALL_UP_TO matches: the planner either walks the kind's
        # documents newest first (rm_search_doc_recent) until it has them, which is what a
        # very common word costs, or reads every match through the GIN index and keeps the
        # newest, when there are few. The kind is a literal so that partial indexes apply.
        matches = sql.SQL(
            "SELECT d.key, d.kind, d.updated_at, d.document"
            " FROM {t} d{join}, (SELECT websearch_to_tsquery({c}, %(text)s) AS query) q"
            " WHERE d.kind = {kind} AND d.document @@ q.query AND {where}{window}"
            " ORDER BY d.occurred_at DESC NULLS LAST, d.key"
        )
        # Not for a customer (their few documents come through their own index) nor with
        # ticket filters (each window would check the filter again: ADR 0018, 0023).
        windowed = query.principal.is_staff and not query.has_ticket_filters
        bounds = recency_bounds(self.table) if windowed and WINDOWED_KINDS else []
        if bounds and _PHRASE.search(query.text):
            # The planner underestimates phrases (it multiplies the words' frequencies), so
            # each later window would recheck every match of the phrase's words on its own:
            # the newest window, then the rest in one pass.
            bounds = bounds[:1]
        # The date filters apply to a message's ticket (``tk``), to a ticket's own document.
        where = {alias: self._where(query, alias) for alias in ("tk", "d")}
        branches = []
        for kind in kinds:
            windows: list[sql.Composable] = [sql.SQL("")]
            if kind in WINDOWED_KINDS and bounds:
                windows = _windows(len(bounds))
                for i, bound in enumerate(bounds):
                    params[f"bound{i}"] = bound
            conditions, where_params = where["tk" if kind == MESSAGE else "d"]
            params.update(where_params)
            parts = [
                matches.format(
                    t=t,
                    join=join if kind == MESSAGE else sql.SQL(""),
                    c=_CONFIG,
                    kind=sql.Literal(kind),
                    where=conditions,
                    window=window,
                )
                for window in windows
            ]
            if len(parts) == 1:
                branches.append(sql.SQL("({} LIMIT %(candidates)s)").format(parts[0]))
            else:
                # Newest window first; PostgreSQL runs the next only while the LIMIT wants rows
                # (a plain Append runs its branches in order: the connections disable parallel
                # plans, config/settings.py, which could interleave them).
                branches.append(
                    sql.SQL("(SELECT * FROM ({}) w LIMIT %(candidates)s)").format(
                        sql.SQL(" UNION ALL ").join(sql.SQL("({})").format(p) for p in parts)
                    )
                )
        candidates = sql.SQL(" UNION ALL ").join(branches)
        page_params = self._page_params(query)
        # One more than are ranked: whether a count is exact, at no extra cost.
        page_params["candidates"] = RANK_ALL_UP_TO + 1
        page_params["ranked"] = RANK_ALL_UP_TO
        with connection.cursor() as cur:
            cur.execute(self._page_sql(candidates), {**params, **page_params})
            counts: dict[str, int] = {}
            rows = []
            for values in cur.fetchall():
                if values[-2] is not None:  # a count row
                    counts[values[-2]] = int(values[-1])
                else:
                    rows.append(dict(zip(_RESULT_COLUMNS, values[:-2], strict=True)))
        return _results(counts, rows)

    def similar(
        self, ticket_id: UUID, principal: Principal, limit: int = SIMILAR_LIMIT
    ) -> tuple[SearchHit, ...]:
        """Tickets sharing the most distinctive words (lexemes) of this one's subject and
        description, best first, never itself: the words are weighed by how rare they are
        (``distinctive_terms``), a ticket scores the weights of the ones it has. As a search
        does (ADR 0018), at most the newest ``SIMILAR_CANDIDATES`` tickets with any of the
        rarest words are scored (ADR 0036)."""
        key = f"{TICKET}:{ticket_id}"
        t = sql.Identifier(self.table)
        with connection.cursor() as cur:
            cur.execute(
                sql.SQL(
                    "SELECT tsvector_to_array(to_tsvector({c}, title || ' ' || body))"
                    " FROM {t} WHERE key = %s"
                )
                .format(c=_CONFIG, t=t)
                .as_string(None),
                [key],
            )
            row = cur.fetchone()
            terms = distinctive_terms(row[0] if row else [], lexeme_stats(self.table))
            if not terms.lexemes:
                return ()
            params: dict[str, Any] = {
                "key": key,
                "lexemes": terms.lexemes,
                "finding": terms.lexemes[: terms.finding],
                "limit": limit,
                "headline": HEADLINE_FRAGMENTS,
                "window": SIMILAR_CANDIDATES,
            }
            for i, (lexeme, weight) in enumerate(zip(terms.lexemes, terms.weights, strict=True)):
                params[f"t{i}"], params[f"w{i}"] = lexeme, weight
            if not principal.is_staff:
                params["me"] = principal.user_id
            cur.execute(
                _similar_sql(self.table, not principal.is_staff, len(terms.lexemes)), params
            )
            rows = [dict(zip(_RESULT_COLUMNS, values, strict=True)) for values in cur.fetchall()]
        return _results({TICKET: len(rows)}, rows).group(TICKET).hits

    def _where(self, query: SearchQuery, ticket: str = "tk") -> tuple[sql.Composed, dict[str, Any]]:
        """The conditions on a match ``d``; the date filters on ``ticket``, its ticket's
        document (``d`` itself when the match is a ticket's document)."""
        dates = sql.Identifier(ticket)
        clauses: list[sql.Composable] = [sql.SQL("TRUE")]
        params: dict[str, Any] = {}
        if not query.principal.is_staff:
            # Their own tickets, never internal notes (and, by ``visible_kinds``, no customers).
            clauses.append(sql.SQL("d.customer_id = %(me)s AND NOT d.internal"))
            params["me"] = query.principal.user_id
        # Status, priority, agent and tags: on the match itself (a message's are its
        # ticket's, ``MESSAGE_COPIES``).
        if query.status:
            clauses.append(sql.SQL("d.status = ANY(%(status)s)"))
            params["status"] = list(query.status)
        if query.priority:
            clauses.append(sql.SQL("d.priority = ANY(%(priority)s)"))
            params["priority"] = list(query.priority)
        if query.agent == NO_AGENT:
            clauses.append(sql.SQL("d.assigned_agent_id IS NULL"))
        elif query.agent is not None:
            clauses.append(sql.SQL("d.assigned_agent_id = %(agent)s"))
            params["agent"] = query.agent
        if query.tags:
            clauses.append(sql.SQL("d.tags @> %(tags)s::varchar[]"))
            params["tags"] = list(query.tags)
        for name, column, op in [
            ("created_from", "created_at", ">="),
            ("created_to", "created_at", "<"),
            ("updated_from", "updated_at", ">="),
            ("updated_to", "updated_at", "<"),
        ]:
            value = getattr(query, name)
            if value is not None:
                clauses.append(
                    sql.SQL("{}.{} {} {}").format(
                        dates, sql.Identifier(column), sql.SQL(op), sql.Placeholder(name)
                    )
                )
                params[name] = value
        return sql.SQL(" AND ").join(clauses), params

    @staticmethod
    def _page_params(query: SearchQuery) -> dict[str, Any]:
        return {
            "offset": query.offset,
            "end": query.offset + query.page_size,
            "weights": WEIGHTS,
            "whole_text": WHOLE_TEXT,
            "headline_whole": HEADLINE_WHOLE,
            "headline_fragments": HEADLINE_FRAGMENTS,
        }

    def _page_sql(self, candidates: sql.Composable) -> str:
        source = sql.SQL(
            "CASE WHEN r.kind = {message} THEN r.body"
            " ELSE concat_ws(' — ', nullif(r.title, ''), nullif(r.body, ''),"
            " nullif(r.metadata, '')) END"
        ).format(message=sql.Literal(MESSAGE))
        # One statement. The candidates (the newest RANK_ALL_UP_TO matches of each kind) are
        # read once, counted and scored with ts_rank_cd; only the page's rows are read whole.
        # Scoring is what costs, so a very common word is ranked among its newest matches
        # and paged through those (like a web search engine's last page), and its count
        # says "at least RANK_ALL_UP_TO" rather than costing a read of every match.
        ranked = sql.SQL(
            "candidates AS MATERIALIZED (SELECT c.key, c.kind, c.updated_at,"
            " ts_rank_cd(%(weights)s::real[], c.document, q.query) AS score"
            " FROM ({candidates}) c, (SELECT websearch_to_tsquery({c}, %(text)s) AS query) q),"
            " counts AS (SELECT kind, count(*) AS total FROM candidates GROUP BY kind),"
            " ranked AS (SELECT key, kind, row_number() OVER (PARTITION BY kind"
            " ORDER BY score DESC, updated_at DESC, key) AS rn FROM candidates)"
        )
        return (
            sql.SQL(
                "WITH {ranked},"
                " page AS (SELECT key, rn FROM ranked"
                " WHERE rn > %(offset)s AND rn <= least(%(end)s, %(ranked)s))"
                " (SELECT r.kind, r.key, r.ticket_id, r.customer_id, r.internal,"
                " CASE WHEN r.kind = {message} THEN coalesce(tk.title, '') ELSE r.title END,"
                " ts_headline({c}, s.text, q.query, CASE WHEN char_length(s.text) <= %(whole_text)s"
                " THEN %(headline_whole)s ELSE %(headline_fragments)s END),"
                # A message shows its ticket's current fields, from the ticket's document.
                " coalesce(tk.status, r.status), coalesce(tk.priority, r.priority),"
                " CASE WHEN r.kind = {message} THEN tk.assigned_agent_id"
                " ELSE r.assigned_agent_id END,"
                " coalesce(tk.tags, r.tags), r.created_at, coalesce(tk.updated_at, r.updated_at),"
                " r.occurred_at, NULL::text, NULL::bigint"
                " FROM page p JOIN {t} r ON r.key = p.key"
                " CROSS JOIN (SELECT websearch_to_tsquery({c}, %(text)s) AS query) q"
                " CROSS JOIN LATERAL (SELECT {source} AS text) s"
                " LEFT JOIN {t} tk"
                " ON r.kind = {message} AND tk.key = {ticket_prefix} || r.ticket_id::text"
                " ORDER BY r.kind, p.rn)"
                # then one row per kind with its count
                " UNION ALL (SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
                " NULL, NULL, NULL, NULL, kind, total FROM counts)"
            )
            .format(
                ranked=ranked.format(candidates=candidates, c=_CONFIG),
                message=sql.Literal(MESSAGE),
                c=_CONFIG,
                source=_escape_html(source),
                t=sql.Identifier(self.table),
                ticket_prefix=sql.Literal(f"{TICKET}:"),
            )
            .as_string(None)
        )


def _has_date_filters(query: SearchQuery) -> bool:
    return any(
        value is not None
        for value in (query.created_from, query.created_to, query.updated_from, query.updated_to)
    )


def _results(counts: dict[str, int], rows: list[dict[str, Any]]) -> SearchResults:
    hits: dict[str, list[SearchHit]] = {kind: [] for kind in KINDS}
    for row in rows:
        hits[row["kind"]].append(
            SearchHit(
                kind=row["kind"],
                id=row["key"].split(":", 1)[1],
                ticket_id=row["ticket_id"],
                customer_id=row["customer_id"],
                title=row["title"],
                snippet=row["snippet"],
                internal=row["internal"],
                status=row["status"],
                priority=row["priority"],
                assigned_agent_id=row["assigned_agent_id"],
                tags=tuple(row["tags"] or ()),
                created_at=row["created_at"],
                updated_at=row["updated_at"],
                occurred_at=row["occurred_at"],
            )
        )
    return SearchResults(
        {
            kind: SearchGroup(
                min(counts.get(kind, 0), RANK_ALL_UP_TO),
                tuple(hits[kind]),
                exact=counts.get(kind, 0) <= RANK_ALL_UP_TO,
            )
            for kind in KINDS
        }
    )


@functools.cache
def _similar_sql(table: str, own: bool, n_terms: int) -> str:
    # The finding words find the candidates (the GIN index), the newest SIMILAR_CANDIDATES of
    # them; each is scored the weights of all the words it has (one lookup in its vector per
    # word, constants once planned), a ticket with more of the rarer words first, then the
    # newest; the snippets mark all the words.
    score = sql.SQL(" + ").join(
        sql.SQL("CASE WHEN r.document @@ quote_literal({})::tsquery THEN {} ELSE 0 END").format(
            sql.Placeholder(f"t{i}"), sql.Placeholder(f"w{i}")
        )
        for i in range(n_terms)
    )
    return (
        sql.SQL(
            "WITH q AS MATERIALIZED (SELECT string_agg(quote_literal(lexeme), ' | ')::tsquery"
            " AS query FROM unnest(%(lexemes)s::text[]) AS lexeme),"
            " finding AS MATERIALIZED (SELECT string_agg(quote_literal(lexeme), ' | ')::tsquery"
            " AS query FROM unnest(%(finding)s::text[]) AS lexeme),"
            " recent AS MATERIALIZED (SELECT d.key, d.document, d.updated_at FROM {t} d, finding f"
            " WHERE d.kind = {ticket} AND d.document @@ f.query AND d.key <> %(key)s AND {mine}"
            " ORDER BY d.occurred_at DESC NULLS LAST, d.key LIMIT %(window)s),"
            " best AS (SELECT r.key, {score} AS score FROM recent r"
            " ORDER BY score DESC, r.updated_at DESC, r.key LIMIT %(limit)s)"
            " SELECT d.kind, d.key, d.ticket_id, d.customer_id, d.internal, d.title,"
            " ts_headline({c}, {text}, q.query, %(headline)s), d.status, d.priority,"
            " d.assigned_agent_id, d.tags, d.created_at, d.updated_at, d.occurred_at"
            " FROM best JOIN {t} d USING (key), q"
            " ORDER BY best.score DESC, d.updated_at DESC, d.key"
        )
        .format(
            t=sql.Identifier(table),
            c=_CONFIG,
            text=_escape_html(sql.SQL("concat_ws(' — ', d.title, nullif(d.body, ''))")),
            ticket=sql.Literal(TICKET),
            mine=sql.SQL("d.customer_id = %(me)s" if own else "TRUE"),
            score=score,
        )
        .as_string(None)
    )
