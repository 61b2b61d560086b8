"""The dashboard's metrics, one SQL each, in the subset ClickHouse 18.16 and chDB share.

docs/analytics.md defines every metric in words; this module is the definition in SQL.
Two kinds of filter apply (``Filters``):

- event metrics (created, resolved, breaches, replies, reopens) read the count tables
  (``analytics_counts``, ``analytics_tag_counts`` with a tag filter; ADR 0049), made from
  the facts: the date range selects the events' ``occurred_at`` (quarter hours, so any time
  zone's days), and priority, agent, team and tag are the ticket's *at that event*;
  unnarrowed, the sizes of those sets per quarter hour (``analytics_count_sums``, and
  ``analytics_agent_sums`` for the throughput; ADR 0058);
- ticket metrics (open now, backlog, first-response and resolution times, compliance,
  volume) read ``analytics_tickets``, the current state: priority, agent, team and tag are
  the ticket's now, and the date range selects the moment named by each metric (open now
  unnarrowed: the status moves' sums over the whole history, ADR 0059; the durations, the
  compliance and the KPI cards unnarrowed: ``analytics_ticket_sums``, per quarter hour of
  the moment, every value kept, ADR 0063; the backlog and the volume by tag unnarrowed: the
  sums of their moves, ADR 0064);
- the status over time reads its count table's sums (``analytics_status_sums``, ADR 0058;
  the sets of ``analytics_status_counts``, ADR 0053, with ``sums=False``), or,
  narrowed by priority, agent, team or tag (the tickets' fields now), the moves of the
  matching tickets in ``analytics_tickets_by_field`` (ADR 0060; the same moves per ticket
  in ``analytics_ticket_status_counts``, ADR 0056, with ``by_field=False`` or before a
  store marked that table whole);
- AI drafts (acceptance, edits) read the facts (``analytics_events``).

Days are calendar days in the admin's time zone (``Filters.tz``); times are seconds.
Every read of a ReplacingMergeTree uses ``FINAL`` and the counts are sets of fact keys
(``uniqExactMerge``), so an event delivered twice counts once.

A read of the ticket states may narrow the rows *before* ``FINAL`` picks each ticket's
latest version (``PREWHERE``, which both ClickHouse 18.16 and chDB apply before ``FINAL``),
but only by a condition that, once true of a ticket's version, is true of every later one
with the same values (ADR 0059): ``opened_at``; ``first_response_at``,
``first_resolved_at`` and their business seconds once set; rated at all. Then the latest
version is always among the rows kept, and ``FINAL`` picks it. Everything else (status,
agent, tags, ``rated_at``, which a rating given again moves) filters after ``FINAL``
(``WHERE``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from infra.clickhouse.ports import AnalyticsDatabase
from infra.clickhouse.schema import (
    AGENT_DAY_SUMS,
    AGENT_SUMS,
    BACKLOG_DAY_SUMS,
    BREACHED_SQL,
    BY_FIELD,
    CLOCKS,
    COUNT_SUMS,
    COUNTS,
    DAY,
    DURATIONS,
    EVENTS,
    FIELDS_READY,
    MOVES_READY,
    OPENED,
    POSITION,
    STATUS_COUNTS,
    STATUS_DAY_SUMS,
    STATUS_SUMS,
    SUMS_READY,
    TAG_COUNTS,
    TAG_VOLUME_DAY_SUMS,
    TAG_VOLUME_SUMS,
    TICKET_STATUS_COUNTS,
    TICKET_SUMS,
    TICKET_SUMS_READY,
    TICKETS,
    duration_sql,
    latest_sums,
    marked,
    open_condition,
)
from infra.clickhouse.sql import in_list, literal
from projections.analytics import OPEN_STATUSES

ALL_STATUSES = (
    "open",
    "assigned",
    "in_progress",
    "waiting_on_customer",
    "resolved",
    "closed",
)
# The distribution's buckets: (label, upper bound in seconds, exclusive; None: no bound).
BUCKETS: tuple[tuple[str, int | None], ...] = (
    ("< 1 h", 3600),
    ("1-4 h", 4 * 3600),
    ("4-8 h", 8 * 3600),
    ("8-24 h", 24 * 3600),
    ("1-3 d", 3 * 86400),
    ("3-7 d", 7 * 86400),
    (">= 7 d", None),
)
UNASSIGNED = ""


@dataclass(frozen=True)
class Filters:
    date_from: date  # inclusive, a calendar day in ``tz``
    date_to: date  # inclusive
    tz: str = "UTC"  # an IANA time zone name
    priority: tuple[str, ...] = ()  # any of
    agent: str | None = None  # an agent's user id; "" for unassigned
    tag: str | None = None
    team: str | None = None  # a team's id; "" for no team

    @property
    def start(self) -> datetime:
        return datetime.combine(self.date_from, time(), ZoneInfo(self.tz)).astimezone(UTC)

    @property
    def end(self) -> datetime:
        following = self.date_to + timedelta(days=1)
        return datetime.combine(following, time(), ZoneInfo(self.tz)).astimezone(UTC)

    def days(self) -> list[date]:
        return [
            self.date_from + timedelta(days=i)
            for i in range((self.date_to - self.date_from).days + 1)
        ]

    def narrowing(self, tag_column: bool = False) -> str:
        """priority, agent, team and tag, as SQL conditions (" AND ..." or ""); the tag is
        an array's element, or with ``tag_column`` a column's value (the tag counts)."""
        parts = []
        if self.priority:
            parts.append(f"priority IN {in_list(list(self.priority))}")
        if self.agent is not None:
            parts.append(f"agent_id = {literal(self.agent)}")
        if self.team is not None:
            parts.append(f"team = {literal(self.team)}")
        if self.tag is not None:
            tag = literal(self.tag)
            parts.append(f"tag = {tag}" if tag_column else f"has(tags, {tag})")
        return "".join(" AND " + p for p in parts)

    def counts(self, select: str, kinds: Sequence[str], rest: str = "") -> str:
        """SELECT ``select`` FROM the count table the filters need, over the range's quarter
        hours and ``kinds`` (``select`` counts with ``uniqExactMerge(events)``)."""
        table = COUNTS if self.tag is None else TAG_COUNTS
        return (
            f"SELECT {select} FROM {table} WHERE {self.within('bucket')} "
            f"AND kind IN {in_list(list(kinds))}{self.narrowing(tag_column=True)} {rest}"
        ).strip()

    def within(self, column: str) -> str:
        return f"{column} >= {literal(self.start)} AND {column} < {literal(self.end)}"


def _over_days(f: Filters, quarters: str, days: str) -> str:
    """``latest_sums`` of the range ``f``: its whole UTC days from the sum table ``days``
    (a row per day), the rest at its edges (another zone's days do not start at a UTC
    day's) from ``quarters`` (a row per quarter hour), as one SELECT (ADR 0062)."""
    start, end = int(f.start.timestamp()), int(f.end.timestamp())
    first, last = -(-start // DAY) * DAY, end // DAY * DAY  # the whole days within
    if first >= last:
        return latest_sums(quarters, f.within("bucket"))

    def between(a: int, b: int) -> str:
        at = (literal(datetime.fromtimestamp(t, UTC)) for t in (a, b))
        return "bucket >= {} AND bucket < {}".format(*at)

    parts = [latest_sums(days, between(first, last))]
    edges = [f"({between(a, b)})" for a, b in ((start, first), (last, end)) if a < b]
    if edges:
        parts.append(latest_sums(quarters, " OR ".join(edges)))
    return " UNION ALL ".join(parts)


def _ratio(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


def _statistics(a: str) -> list[str]:
    """count, [median, p90], average of the sorted array of seconds ``a``, as SQL: the one
    rule, whichever table the seconds come from. Exact: a quantile interpolates linearly
    between the two values nearest its rank (level x (count - 1)), as PostgreSQL's
    ``percentile_cont`` does (and ClickHouse's ``quantiles`` up to 8,192 values)."""
    n = f"length({a})"

    def level(q: float) -> str:
        rank = f"({q} * (greatest({n}, 1) - 1))"
        low = f"toUInt64(floor({rank}))"
        part = f"({rank} - {low})"
        return f"{a}[{low} + 1] * (1 - {part}) + {a}[least({low} + 2, {n})] * {part}"

    return [n, f"[{level(0.5)}, {level(0.9)}]", f"if({n} = 0, 0, arraySum({a}) / {n})"]


def _quantiles(row: Sequence[Any]) -> dict[str, Any]:
    count, q, average = int(row[0]), row[1], row[2]
    return {
        "count": count,
        "median": float(q[0]) if count else None,
        "p90": float(q[1]) if count else None,
        "average": float(average) if count else None,
    }


class Metrics:
    """The dashboard's queries on one analytics database."""

    def __init__(self, db: AnalyticsDatabase, *, sums: bool = True, by_field: bool = True) -> None:
        """``sums``: read the unnarrowed event counts from the sums of the sets (ADR 0058)
        once the store says they hold every set; False: always from the sets.
        ``by_field``: read the narrowed status over time from the tickets by field (ADR
        0060) once the store says that table is whole; False: from the per-ticket sets."""
        self.db = db
        self.sums = sums
        self.by_field = by_field

    def _fielded(self, f: Filters) -> bool:
        """Whether ``f``'s narrowed status moves come from ``analytics_tickets_by_field``:
        narrowed, and the table known to hold every ticket's whole history."""
        return self.by_field and bool(f.narrowing()) and marked(self.db, FIELDS_READY)

    def _summed(self, f: Filters) -> bool:
        """Whether ``f``'s event counts come from the sums: not narrowed (the sums have no
        priority, agent, team or tag), and the sums known to hold every set."""
        return self.sums and not f.narrowing() and marked(self.db, SUMS_READY)

    def _kind_counts(self, f: Filters, kinds: Sequence[str], *, by_day: bool) -> list[Any]:
        """([day,] kind, events) of the range: the events of each kind (and day), each once."""
        return self.db.query(self._kind_counts_sql(f, kinds, by_day=by_day, summed=self._summed(f)))

    def _kind_counts_sql(
        self, f: Filters, kinds: Sequence[str], *, by_day: bool, summed: bool
    ) -> str:
        """``_kind_counts``' query, from the sums (``summed``: ``self._summed(f)``) or sets."""
        day = f"toString(toDate(bucket, {literal(f.tz)})) AS day, " if by_day else ""
        group = "day, kind" if by_day else "kind"
        if not summed:
            return f.counts(f"{day}kind, uniqExactMerge(events)", kinds, f"GROUP BY {group}")
        where = f"{f.within('bucket')} AND kind IN {in_list(list(kinds))}"
        return f"SELECT {day}kind, sum(n) FROM ({latest_sums(COUNT_SUMS, where)}) GROUP BY {group}"

    def position(self) -> int:
        """The log position the analytics tables reflect (for ``?after=``)."""
        rows = self.db.query(f"SELECT max(position) FROM {POSITION}")
        return int(rows[0][0] or 0) if rows else 0

    # ------------------------------------------------------------------ tickets now
    def open_now(self, f: Filters) -> dict[str, Any]:
        """Tickets open now (every status but Resolved and Closed), in all and by status.

        Unnarrowed, from the status moves' sums (ADR 0058), per day (ADR 0062): the tickets
        in a status are those that entered it less those that left it, over the whole
        history, as the status over time counts a day's end; narrowed, the current states
        whose fields now match."""
        summed = self._summed(f)
        return self._open_now(self.db.query(self._open_now_sql(f, summed)), summed)

    def _open_now_sql(self, f: Filters, summed: bool) -> str:
        if summed:  # the whole history: a row per day (ADR 0062)
            moves = latest_sums(STATUS_DAY_SUMS, open_condition())
            return f"SELECT status, delta, sum(n) FROM ({moves}) GROUP BY status, delta"
        return (
            f"SELECT status, count() FROM {TICKETS} FINAL "
            f"WHERE {open_condition()}{f.narrowing()} GROUP BY status"
        )

    def _open_now(self, rows: Sequence[Any], summed: bool) -> dict[str, Any]:
        by_status = dict.fromkeys(sorted(OPEN_STATUSES), 0)
        if summed:
            for status, delta, n in rows:
                by_status[str(status)] += int(delta) * int(n)
        else:
            by_status.update({str(s): int(n) for s, n in rows})
        return {"open": sum(by_status.values()), "by_status": by_status}

    def backlog(self, f: Filters) -> list[dict[str, Any]]:
        """Open tickets per assigned agent ("" for unassigned), most first.

        Unnarrowed, from the backlog's day sums (ADR 0064): per agent, the open tickets that
        came to them less those that left them, over the whole history; narrowed, the
        current states whose fields now match."""
        if self._moved(f):
            moves = latest_sums(BACKLOG_DAY_SUMS, "1")
            sql = (
                "SELECT agent_id, sumIf(n, delta = 1) - sumIf(n, delta = -1) AS tickets "
                f"FROM ({moves}) GROUP BY agent_id HAVING tickets != 0 "
                "ORDER BY tickets DESC, agent_id"
            )
        else:
            sql = (
                f"SELECT agent_id, count() AS n FROM {TICKETS} FINAL "
                f"WHERE {open_condition()}{f.narrowing()} GROUP BY agent_id "
                "ORDER BY n DESC, agent_id"
            )
        return [{"agent_id": str(a), "open": int(n)} for a, n in self.db.query(sql)]

    def _moved(self, f: Filters) -> bool:
        """Whether ``f``'s backlog and volume by tag come from the move tables' sums (ADR
        0064): not narrowed, and the store said the move tables hold every fact and the sums
        every set."""
        return (
            self.sums
            and not f.narrowing()
            and marked(self.db, MOVES_READY)
            and marked(self.db, SUMS_READY)
        )

    def status_over_time(self, f: Filters) -> list[dict[str, Any]]:
        """For each day of the range: the tickets opened by its end, by their status at its
        end (every status listed, zeros included). Priority, agent and tag narrow by the
        tickets' fields now.

        Per day and status, +1 for each ticket entering it (opened, or a status change to
        it) and -1 for each leaving it, up to the range's end (``status_moves``); the counts
        at a day's end are the sums up to that day (added up here: no window functions in
        18.16)."""
        deltas: dict[str, dict[str, int]] = {}
        for day, status, delta in self.status_moves(f):
            by_status = deltas.setdefault(str(day), {})
            by_status[str(status)] = by_status.get(str(status), 0) + int(delta)
        first = f.date_from.isoformat()
        running = dict.fromkeys(ALL_STATUSES, 0)
        for day in sorted(d for d in deltas if d < first):  # before the range: the start
            for status, delta in deltas[day].items():
                running[status] = running.get(status, 0) + delta
        out = []
        for d in f.days():
            for status, delta in deltas.get(d.isoformat(), {}).items():
                running[status] = running.get(status, 0) + delta
            out.append({"day": d.isoformat(), "by_status": dict(running)})
        return out

    def status_moves(self, f: Filters) -> list[tuple[str, str, int]]:
        """(day, status, tickets in - tickets out) up to the range's end, from the moves'
        count tables (sets of fact keys, no ``FINAL``; one move rule fills both,
        ``schema.count_statements``): unnarrowed, the sums of ``analytics_status_counts``
        (``analytics_status_sums``, ADR 0058; the sets themselves with ``sums=False``); narrowed by
        the tickets' fields now, the moves of the matching tickets in
        ``analytics_tickets_by_field`` (ADR 0060), or ``analytics_ticket_status_counts`` of
        the tickets whose fields now match (ADR 0056; ``by_field=False``, or that table not
        marked whole)."""
        narrowing = f.narrowing()
        if self._summed(f):
            rows = self.db.query(
                f"SELECT toString(toDate(bucket, {literal(f.tz)})) AS day, status, delta, "
                f"sum(n) FROM ({latest_sums(STATUS_SUMS, f'bucket < {literal(f.end)}')}) "
                "GROUP BY day, status, delta"
            )
            return [(str(d), str(status), int(delta) * int(n)) for d, status, delta, n in rows]
        if self._fielded(f):
            return self._moves_by_field(f)
        table, among = STATUS_COUNTS, ""
        if narrowing:
            # The moves of the tickets matching now: found first (the table's key), so
            # only theirs are read further (no FINAL here: sets, read whole).
            table = TICKET_STATUS_COUNTS
            among = (
                f"PREWHERE ticket_id IN (SELECT ticket_id FROM {TICKETS} FINAL WHERE 1{narrowing}) "
            )
        rows = self.db.query(
            f"SELECT toString(toDate(bucket, {literal(f.tz)})) AS day, status, delta, "
            f"uniqExactMerge(events) FROM {table} {among}"
            f"WHERE bucket < {literal(f.end)} GROUP BY day, status, delta"
        )
        return [(str(day), str(status), int(delta) * int(n)) for day, status, delta, n in rows]

    def _moves_by_field(self, f: Filters) -> list[tuple[str, str, int]]:
        """``status_moves`` narrowed, from ``analytics_tickets_by_field`` (ADR 0060): the
        rows of one narrowing field's values (a range of the table's key: the tag, else the
        agent, the team, the priorities), latest version each, present, whose copied fields
        now meet the rest of the narrowing; their moves, by the quarter hour's day as the
        count tables have them."""
        if f.tag is not None:
            field, values = "tag", [f.tag]
        elif f.agent is not None:
            field, values = "agent", [f.agent]
        elif f.team is not None:
            field, values = "team", [f.team]
        else:
            field, values = "priority", list(f.priority)
        tickets = (
            f"SELECT move_at, move_status, move_delta FROM {BY_FIELD} FINAL "
            f"WHERE field = {literal(field)} AND value IN {in_list(values)} AND present = 1"
            f"{f.narrowing()}"
        )
        rows = self.db.query(
            "SELECT toString(toDate(toStartOfFifteenMinutes(at), "
            f"{literal(f.tz)})) AS day, status, delta, count() FROM ({tickets}) "
            "ARRAY JOIN move_at AS at, move_status AS status, move_delta AS delta "
            f"WHERE toStartOfFifteenMinutes(at) < {literal(f.end)} GROUP BY day, status, delta"
        )
        return [(str(day), str(status), int(delta) * int(n)) for day, status, delta, n in rows]

    # ------------------------------------------------------------------ events per day
    def daily(self, f: Filters) -> list[dict[str, Any]]:
        """Tickets created and resolved per calendar day of the range (every day listed)."""
        rows = self._kind_counts(f, ("created", "resolved"), by_day=True)
        found: dict[str, dict[str, int]] = {}
        for day, kind, n in rows:
            found.setdefault(str(day), {})[str(kind)] = int(n)
        return [
            {
                "day": d.isoformat(),
                "created": found.get(d.isoformat(), {}).get("created", 0),
                "resolved": found.get(d.isoformat(), {}).get("resolved", 0),
            }
            for d in f.days()
        ]

    TOTAL_KINDS = (
        "created",
        "resolved",
        "reopened",
        "breach:first_response",
        "breach:resolution",
        "staff_reply",
    )

    def totals(self, f: Filters) -> dict[str, int]:
        """Events of the range: created, resolved, reopened, SLA breaches, staff replies."""
        return self._totals(self._kind_counts(f, self.TOTAL_KINDS, by_day=False))

    def _totals(self, rows: Sequence[Any]) -> dict[str, int]:
        found = {str(kind): int(n) for kind, n in rows}
        first = found.get("breach:first_response", 0)
        resolution = found.get("breach:resolution", 0)
        return {
            "created": found.get("created", 0),
            "resolved": found.get("resolved", 0),
            "reopened": found.get("reopened", 0),
            "sla_breaches": first + resolution,
            "first_response_breaches": first,
            "resolution_breaches": resolution,
            "staff_replies": found.get("staff_reply", 0),
        }

    # ------------------------------------------------------------------ durations
    # (the moment, its business-time column): opening -> first response, -> first resolution
    DURATIONS = DURATIONS
    CLOCKS = CLOCKS

    def _durations(self, f: Filters, which: str, clock: str) -> tuple[str, str]:
        """(seconds, condition): per ticket whose ``which`` moment falls in the range, the
        seconds from opening to it, wall-clock, or business time (the moment's business
        column; tickets without it left out), as SQL over a row of ``analytics_tickets``
        (``schema.duration_sql``, the ticket sums' definition too)."""
        seconds, present = duration_sql(which, clock)
        until = DURATIONS[which][0]
        return seconds, f"{present} AND {f.within(f'assumeNotNull({until})')}"

    def _ticket_summed(self, f: Filters) -> bool:
        """Whether ``f``'s ticket metrics (durations, compliance) come from the ticket sums
        (ADR 0063): not narrowed (the sums have no fields), and the sums known whole."""
        return self.sums and not f.narrowing() and marked(self.db, TICKET_SUMS_READY)

    def _ticket_sums(self, f: Filters, columns: Sequence[str], measures: Sequence[str]) -> str:
        """SELECT ``columns`` over the ticket sums' rows of ``measures`` in the range."""
        return (
            f"SELECT {', '.join(columns)} FROM {TICKET_SUMS} FINAL WHERE {f.within('bucket')} "
            f"AND measure IN {in_list(list(measures))}"
        )

    def _seconds(self, f: Filters, which: str, clock: str, summed: bool) -> str:
        """SELECT the sorted seconds (``a``) of the tickets whose ``which`` moment falls in
        the range: from the ticket sums (``summed``), or the states whose fields now match."""
        if summed:
            measure = f"{which}:{clock}"
            return self._ticket_sums(f, ["arraySort(groupArrayMerge(seconds)) AS a"], [measure])
        seconds, condition = self._durations(f, which, clock)
        return (
            "SELECT arraySort(groupArray(seconds)) AS a FROM (SELECT "
            f"{seconds} AS seconds FROM {TICKETS} FINAL PREWHERE {condition} "
            f"WHERE 1{f.narrowing()})"
        )

    def statistics(self, f: Filters, which: str, clock: str = "wall") -> dict[str, Any]:
        """Count, median, p90 and average of opening -> ``which`` (seconds)."""
        source = self._seconds(f, which, clock, self._ticket_summed(f))
        return _quantiles(self.db.query(f"SELECT {', '.join(_statistics('a'))} FROM ({source})")[0])

    def duration(self, f: Filters, which: str, clock: str = "wall") -> dict[str, Any]:
        """Median, p90, average and distribution of opening -> ``which`` (seconds)."""
        source = self._seconds(f, which, clock, self._ticket_summed(f))
        counts, low = [], None
        for _, bound in BUCKETS:  # [low, bound): each bucket from the one before's bound
            parts = [f"x >= {low}"] if low is not None else []
            parts += [f"x < {bound}"] if bound is not None else []
            counts.append(f"arrayCount(x -> {' AND '.join(parts)}, a)")
            low = bound
        row = self.db.query(f"SELECT {', '.join([*_statistics('a'), *counts])} FROM ({source})")[0]
        return {
            **_quantiles(row[:3]),
            "clock": clock,
            "distribution": [
                {"bucket": label, "tickets": int(n)}
                for (label, _), n in zip(BUCKETS, row[3:], strict=True)
            ],
        }

    def first_response(self, f: Filters, clock: str = "wall") -> dict[str, Any]:
        """Opening to the first public reply by an agent or admin, for tickets first answered
        in the range."""
        return self.duration(f, "first_response", clock)

    def resolution(self, f: Filters, clock: str = "wall") -> dict[str, Any]:
        """Opening to the first resolution, for tickets first resolved in the range."""
        return self.duration(f, "resolution", clock)

    # ------------------------------------------------------------------ SLA, reopens
    def sla(self, f: Filters) -> dict[str, Any]:
        """Breaches recorded in the range, and compliance: of the tickets opened in the
        range, the % with no breach recorded (so far). Two reads at once (``query_all``):
        the event totals, the tickets opened and breached."""
        summed = self._summed(f)
        total_rows, opened = self.db.query_all(
            [
                self._kind_counts_sql(f, self.TOTAL_KINDS, by_day=False, summed=summed),
                self._opened_sql(f, self._ticket_summed(f)),
            ]
        )
        return self._sla(self._totals(total_rows), opened[0])

    def _opened_sql(self, f: Filters, summed: bool) -> str:
        """SELECT the tickets opened in the range, and those of them with a breach recorded
        (``opened``, ``breached``): from the ticket sums (``summed``), or the states whose
        fields now match (``opened_at`` never changes: it narrows before ``FINAL``)."""
        if summed:
            return self._ticket_sums(
                f,
                [f"sumIf(n, measure = '{OPENED}') AS opened", "sumIf(n, measure = 'breached')"],
                [OPENED, "breached"],
            )
        opened = f.within("opened_at")
        return (
            f"SELECT countIf({opened}) AS opened, countIf({opened} AND {BREACHED_SQL}) "
            f"FROM {TICKETS} FINAL PREWHERE {opened} WHERE 1{f.narrowing()}"
        )

    def _sla(self, totals: dict[str, int], row: Sequence[Any]) -> dict[str, Any]:
        opened, breached = int(row[0]), int(row[1])
        return {
            "breaches": totals["sla_breaches"],
            "first_response_breaches": totals["first_response_breaches"],
            "resolution_breaches": totals["resolution_breaches"],
            "tickets": opened,
            "compliant": opened - breached,
            "compliance_pct": _ratio(opened - breached, opened),
        }

    def reopen_rate(self, f: Filters) -> dict[str, Any]:
        """Reopens in the range (Resolved back to a working status) per resolution in the
        range, in %."""
        totals = self.totals(f)
        return {
            "reopened": totals["reopened"],
            "resolved": totals["resolved"],
            "reopen_rate_pct": _ratio(totals["reopened"], totals["resolved"]),
        }

    # ------------------------------------------------------------------ agents
    def throughput(self, f: Filters) -> list[dict[str, Any]]:
        """Per agent: resolutions in the range of tickets assigned to them at the time, and
        public replies they sent in the range (unnarrowed, from their sums, ADR 0058: the
        range's whole UTC days per day, its edges per quarter hour, ADR 0062)."""
        if self._summed(f):
            sums = self.db.query(
                f"SELECT kind, who, sum(n) FROM ({_over_days(f, AGENT_SUMS, AGENT_DAY_SUMS)}) "
                "GROUP BY kind, who"
            )
            resolved = {who: n for kind, who, n in sums if kind == "resolved" and who != ""}
            replies = {who: n for kind, who, n in sums if kind == "staff_reply"}
        else:
            resolved = dict(
                self.db.query(
                    f.counts(
                        "agent_id, uniqExactMerge(events)",
                        ("resolved",),
                        "AND agent_id != '' GROUP BY agent_id",
                    )
                )
            )
            replies = dict(
                self.db.query(
                    f.counts(
                        "actor_id, uniqExactMerge(events)", ("staff_reply",), "GROUP BY actor_id"
                    )
                )
            )
        agents = sorted(set(resolved) | set(replies))
        rows = [
            {
                "agent_id": str(a),
                "resolved": int(resolved.get(a, 0)),
                "replies": int(replies.get(a, 0)),
            }
            for a in agents
        ]
        return sorted(rows, key=lambda r: (-r["resolved"], -r["replies"], r["agent_id"]))

    # ------------------------------------------------------------------ volume
    VOLUME_BY = {
        "priority": "priority",
        "language": "language",
        "tag": "tag",
        "channel": "channel",
    }

    def volume(self, f: Filters, by: str) -> list[dict[str, Any]]:
        """Tickets opened in the range, by their priority, language or tag now (a ticket with
        two tags counts once for each; one without tags counts for none), or by the channel
        they came in through."""
        if by not in self.VOLUME_BY:
            raise ValueError(f"volume by one of {', '.join(self.VOLUME_BY)}")
        # opened_at never changes: the range narrows before FINAL, the rest after.
        where = f"PREWHERE {f.within('opened_at')} WHERE 1{f.narrowing()}"
        if by == "tag" and self._moved(f):
            # Per quarter hour (UTC day) of the openings, the tags given less those taken.
            moves = _over_days(f, TAG_VOLUME_SUMS, TAG_VOLUME_DAY_SUMS)
            sql = (
                "SELECT tag AS key, sumIf(n, delta = 1) - sumIf(n, delta = -1) AS tickets "
                f"FROM ({moves}) GROUP BY key HAVING tickets != 0 ORDER BY tickets DESC, key"
            )
        elif by == "tag":
            sql = (
                f"SELECT tag AS key, count() AS n FROM (SELECT tags FROM {TICKETS} FINAL "
                f"{where}) ARRAY JOIN tags AS tag GROUP BY key ORDER BY n DESC, key"
            )
        else:
            sql = (
                f"SELECT {by} AS key, count() AS n FROM {TICKETS} FINAL {where} "
                "GROUP BY key ORDER BY n DESC, key"
            )
        return [{by: str(k), "tickets": int(n)} for k, n in self.db.query(sql)]

    # ------------------------------------------------------------------ AI drafts
    def drafts(self, f: Filters) -> list[dict[str, Any]]:
        """Per agent who asked for them: the drafts that came back ready in the range
        (``DraftGenerated``, outcome ready; asked for at most a day before), how many of
        those the agent sent as a reply
        (``ReplySentFromDraft``, whenever), the acceptance rate (sent / ready, %), and over
        the sent ones the average edit distance (characters) and the average edit as a % of
        the draft's length. Priority, agent, team and tag are the ticket's when the draft
        came back."""
        # Per draft, without FINAL: a fact read twice changes no any/max/min. Requests are
        # read from a day before the range (a draft comes back within minutes, or fails).
        since = literal(f.start - timedelta(days=1))
        per_draft = (
            "SELECT draft_id, anyIf(actor_id, event_type = 'DraftRequested') AS agent, "
            "maxIf(1, event_type = 'DraftGenerated' AND draft_outcome = 'ready'"
            f"{f.narrowing()}) AS ready, "
            "minIf(occurred_at, event_type = 'DraftGenerated') AS generated_at, "
            "maxIf(1, event_type = 'ReplySentFromDraft') AS sent, "
            "maxIf(edit_distance, event_type = 'ReplySentFromDraft') AS distance, "
            "maxIf(draft_length, event_type = 'ReplySentFromDraft') AS length "
            f"FROM {EVENTS} WHERE occurred_at >= {since} AND event_type IN "
            "('DraftRequested', 'DraftGenerated', 'ReplySentFromDraft') GROUP BY draft_id"
        )
        rows = self.db.query(
            "SELECT agent, count(), sum(sent), avgIf(distance, sent = 1), "
            "avgIf(100.0 * distance / greatest(length, 1), sent = 1) "
            f"FROM ({per_draft}) WHERE ready = 1 AND {f.within('generated_at')} "
            "GROUP BY agent ORDER BY agent"
        )
        out = []
        for agent, ready, sent, distance, edit_pct in rows:
            some = int(sent) > 0
            out.append(
                {
                    "agent_id": str(agent),
                    "drafts": int(ready),
                    "sent": int(sent),
                    "acceptance_pct": _ratio(int(sent), int(ready)),
                    "edit_distance_avg": round(float(distance), 2) if some else None,
                    "edit_pct_avg": round(float(edit_pct), 2) if some else None,
                }
            )
        return sorted(out, key=lambda r: (-r["drafts"], r["agent_id"]))

    # ------------------------------------------------------------------ satisfaction
    RATINGS = (1, 2, 3, 4, 5)
    SATISFIED = 4  # CSAT counts ratings of 4 and 5 as satisfied

    def satisfaction(self, f: Filters) -> dict[str, Any]:
        """CSAT: the tickets whose latest rating (``SatisfactionRated``; a customer may change
        it) was given in the range: how many, their average rating (1-5) and the share rated
        4 or 5 (%), per rating, per agent and per team (the tickets' now, like every ticket
        metric)."""
        # Rated or not is kept by later versions; when is not (a rating given again).
        rows = self.db.query(
            "SELECT agent_id, team, assumeNotNull(rating) AS r, count() "
            f"FROM {TICKETS} FINAL PREWHERE isNotNull(rated_at) "
            f"WHERE {f.within('assumeNotNull(rated_at)')}{f.narrowing()} GROUP BY agent_id, team, r"
        )
        per_rating = dict.fromkeys(self.RATINGS, 0)
        agents: dict[str, list[tuple[int, int]]] = {}
        teams: dict[str, list[tuple[int, int]]] = {}
        for agent, team, rating, n in rows:
            per_rating[int(rating)] = per_rating.get(int(rating), 0) + int(n)
            agents.setdefault(str(agent), []).append((int(rating), int(n)))
            teams.setdefault(str(team), []).append((int(rating), int(n)))
        overall = self._csat(list(per_rating.items()))

        def grouped(groups: dict[str, list[tuple[int, int]]], key: str) -> list[dict[str, Any]]:
            out = [{key: k, **self._csat(v)} for k, v in groups.items()]
            return sorted(out, key=lambda r: (-r["ratings"], r[key]))

        return {
            **overall,
            "distribution": [{"rating": r, "tickets": n} for r, n in per_rating.items()],
            "by_agent": grouped(agents, "agent_id"),
            "by_team": grouped(teams, "team"),
        }

    def _csat(self, counts: Sequence[tuple[int, int]]) -> dict[str, Any]:
        """(rating, tickets) pairs -> ratings, average (2 decimals), satisfied % (null if none)."""
        total = sum(n for _, n in counts)
        satisfied = sum(n for r, n in counts if r >= self.SATISFIED)
        return {
            "ratings": total,
            "average": round(sum(r * n for r, n in counts) / total, 2) if total else None,
            "satisfied_pct": _ratio(satisfied, total),
        }

    # ------------------------------------------------------------------ the KPI cards
    def summary(self, f: Filters) -> dict[str, Any]:
        """The KPI cards: three independent reads at once (``query_all``): the ticket cards
        but open now in one read (the cards need no distribution: the resolution and first
        response statistics, the tickets opened and breached), the event totals, open now.
        Unnarrowed, the ticket cards read the ticket sums (ADR 0063), else the current
        states of the tickets resolved, answered or opened in the range."""
        summed = self._summed(f)
        rows, total_rows, open_rows = self.db.query_all(
            [
                f"SELECT {', '.join([*_statistics('r'), *_statistics('fr')])}, opened, breached "
                f"FROM ({self._ticket_cards_sql(f)})",
                self._kind_counts_sql(f, self.TOTAL_KINDS, by_day=False, summed=summed),
                self._open_now_sql(f, summed),
            ]
        )
        row, totals = list(rows[0]), self._totals(total_rows)
        resolution, first = _quantiles(row[0:3]), _quantiles(row[3:6])
        sla = self._sla(totals, row[6:8])
        return {
            "open": self._open_now(open_rows, summed)["open"],
            "created": totals["created"],
            "resolved": totals["resolved"],
            "resolution_median_seconds": resolution["median"],
            "resolution_average_seconds": resolution["average"],
            "first_response_median_seconds": first["median"],
            "sla_breaches": totals["sla_breaches"],
            "sla_compliance_pct": sla["compliance_pct"],
            "reopen_rate_pct": _ratio(totals["reopened"], totals["resolved"]),
        }

    def _ticket_cards_sql(self, f: Filters) -> str:
        """SELECT the sorted resolution seconds (``r``), first-response seconds (``fr``) and
        the tickets ``opened`` and ``breached`` of the range, in one read."""
        if self._ticket_summed(f):
            resolution, first = "resolution:wall", "first_response:wall"
            return self._ticket_sums(
                f,
                [
                    f"arraySort(groupArrayMergeIf(seconds, measure = '{resolution}')) AS r",
                    f"arraySort(groupArrayMergeIf(seconds, measure = '{first}')) AS fr",
                    f"sumIf(n, measure = '{OPENED}') AS opened",
                    "sumIf(n, measure = 'breached') AS breached",
                ],
                [resolution, first, OPENED, "breached"],
            )
        (r_seconds, r_in), (fr_seconds, fr_in) = (
            self._durations(f, which, "wall") for which in ("resolution", "first_response")
        )
        opened = f.within("opened_at")
        # Each condition is kept by a ticket's later versions: all narrow before FINAL.
        return (
            f"SELECT arraySort(groupArrayIf({r_seconds}, {r_in})) AS r, "
            f"arraySort(groupArrayIf({fr_seconds}, {fr_in})) AS fr, "
            f"countIf({opened}) AS opened, countIf({opened} AND {BREACHED_SQL}) AS breached "
            f"FROM {TICKETS} FINAL PREWHERE ({r_in}) OR ({fr_in}) OR ({opened}) "
            f"WHERE 1{f.narrowing()}"
        )
