"""The audit browser: every event in the store, across all aggregates, newest first.

Read straight from the event store (the audit log *is* the event history): a page walks the
notification log backwards from ``before`` in chunks, filtered in SQL by event type and
aggregate, and in Python by actor and time (those live inside the event's state). A page
stops after ``SCAN_LIMIT`` events even if it found fewer matches than asked: ``next_before``
then continues the walk, so no request reads the whole log. ``since`` ends the walk at the
first older event (positions follow commit order, and times follow positions within the
clock's precision).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from django.utils.dateparse import parse_datetime
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import sql
from rest_framework.exceptions import ValidationError

from command_api.application import DeskstreamApplication
from domain.admin import AdminChange
from domain.agent import Agent
from domain.macro import Macro
from domain.team import Team
from domain.ticket import Ticket
from infra.api import in_utc
from infra.auth.models import User

CHUNK = 500
SCAN_LIMIT = 5000
_META = {"originator_id", "originator_version", "timestamp", "originator_topic"}
AGGREGATES: dict[str, type[Aggregate]] = {
    "ticket": Ticket,
    "agent": Agent,
    "team": Team,
    "macro": Macro,
    "admin_change": AdminChange,
}


def _event_classes() -> dict[str, tuple[str, str]]:
    """Event type name -> (stored topic, aggregate kind)."""
    out: dict[str, tuple[str, str]] = {}
    for kind, aggregate in AGGREGATES.items():
        for value in vars(aggregate).values():
            topic = getattr(value, "TOPIC", None)
            if (
                isinstance(value, type)
                and issubclass(value, Aggregate.Event)
                and topic
                and value.__name__ != "Event"
                and value.__name__ != "Created"
            ):
                out[value.__name__] = (topic, kind)
    return out


EVENT_TYPES = _event_classes()
KIND_OF_TOPIC = dict(EVENT_TYPES.values())


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    topics: tuple[str, ...] = ()
    ticket: UUID | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass
class AuditPage:
    rows: list[dict[str, Any]] = field(default_factory=list)
    next_before: int | None = None


def _time(params: Mapping[str, str], name: str) -> datetime | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = parse_datetime(raw)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise ValidationError({name: ["An ISO-8601 time with a UTC offset."]})
    try:
        return in_utc(value)
    except (ValueError, OverflowError):
        raise ValidationError({name: ["An ISO-8601 time with a UTC offset."]}) from None


def parse_filter(params: Mapping[str, str]) -> AuditFilter:
    actor = params.get("actor") or None
    if actor is not None and (len(actor) > 64 or "\x00" in actor):
        raise ValidationError({"actor": ["A user id."]})
    topics: list[str] = []
    for name in filter(None, (params.get("type") or "").split(",")):
        if name.strip() not in EVENT_TYPES:
            raise ValidationError({"type": [f"Unknown event type {name.strip()[:60]!r}."]})
        topics.append(EVENT_TYPES[name.strip()][0])
    ticket = None
    if params.get("ticket"):
        try:
            ticket = UUID(params["ticket"])
        except ValueError:
            raise ValidationError({"ticket": ["A ticket id."]}) from None
    since, until = _time(params, "since"), _time(params, "until")
    if since and until and since >= until:
        raise ValidationError({"until": ["Must be after since."]})
    return AuditFilter(actor, tuple(topics), ticket, since, until)


def _query(recorder: PostgresApplicationRecorder, flt: AuditFilter, descending: bool) -> str:
    where = [
        sql.SQL("notification_id < %(before)s" if descending else "notification_id > %(after)s")
    ]
    if flt.topics:
        where.append(sql.SQL("topic = ANY(%(topics)s)"))
    if flt.ticket:
        where.append(sql.SQL("originator_id = %(ticket)s"))
    return (
        sql.SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {schema}.{table} WHERE {where} ORDER BY notification_id {order} LIMIT {limit}"
        )
        .format(
            schema=sql.Identifier(recorder.datastore.schema),
            table=sql.Identifier(recorder.events_table_name),
            where=sql.SQL(" AND ").join(where),
            order=sql.SQL("DESC" if descending else "ASC"),
            limit=sql.Literal(CHUNK),
        )
        .as_string(None)
    )


def _chunk(
    app: DeskstreamApplication, flt: AuditFilter, *, before: int | None, after: int | None
) -> list[tuple[int, Any]]:
    recorder = app.recorder
    assert isinstance(recorder, PostgresApplicationRecorder)
    descending = after is None
    params = {
        "before": before if before is not None else 2**62,
        "after": after or 0,
        "topics": list(flt.topics),
        "ticket": flt.ticket,
    }
    with recorder.datastore.get_connection() as conn:
        rows = conn.execute(_query(recorder, flt, descending), params).fetchall()
    out = []
    for row in rows:
        stored = StoredEvent(
            originator_id=row["originator_id"],
            originator_version=row["originator_version"],
            topic=row["topic"],
            state=bytes(row["state"]),
        )
        out.append((row["notification_id"], stored))
    return out


def present(app: DeskstreamApplication, position: int, stored: StoredEvent) -> dict[str, Any]:
    event = cast(Aggregate.Event, app.mapper.to_domain_event(stored))
    data = {k: v for k, v in vars(event).items() if k not in _META}
    actor_id = data.pop("actor_id", None) or data.get("author_id")
    actor_role = data.pop("actor_role", None) or data.get("author_role")
    if isinstance(event, Agent.Event) and actor_id is None:
        actor_id = None  # agent events name no actor: their admin change does
    return {
        "position": position,
        "time": event.timestamp,
        "type": type(event).__name__,
        "aggregate": KIND_OF_TOPIC.get(stored.topic, "other"),
        "aggregate_id": str(stored.originator_id),
        "version": stored.originator_version,
        "actor": {"id": actor_id, "role": actor_role},
        "data": _jsonable(data),
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _name_actors(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row's actor with the user's name (one query for the rows; ``None`` for actors
    that are no user, such as ``automation``)."""
    ids = {int(r["actor"]["id"]) for r in rows if str(r["actor"]["id"] or "").isdigit()}
    names = {str(u.pk): u.display_name for u in User.objects.filter(pk__in=ids)} if ids else {}
    for row in rows:
        row["actor"]["name"] = names.get(str(row["actor"]["id"]))
    return rows


def _matches(row: dict[str, Any], flt: AuditFilter) -> bool:
    if flt.actor is not None and row["actor"]["id"] != flt.actor:
        return False
    return not (flt.until is not None and row["time"] >= flt.until)


def audit_page(
    app: DeskstreamApplication, flt: AuditFilter, *, before: int | None, size: int
) -> AuditPage:
    page = AuditPage()
    scanned = 0
    cursor = before
    while scanned < SCAN_LIMIT:
        chunk = _chunk(app, flt, before=cursor, after=None)
        if not chunk:
            break  # the start of the log: no older page
        for position, stored in chunk:
            scanned += 1
            cursor = position
            row = present(app, position, stored)
            if flt.since is not None and row["time"] < flt.since:
                _name_actors(page.rows)
                return page
            if _matches(row, flt):
                page.rows.append(row)
                if len(page.rows) == size:
                    page.next_before = position
                    _name_actors(page.rows)
                    return page
        if len(chunk) < CHUNK:
            break
    else:
        page.next_before = cursor
    _name_actors(page.rows)
    return page


def audit_rows(app: DeskstreamApplication, flt: AuditFilter) -> Iterator[dict[str, Any]]:
    """Every matching event, oldest first (the CSV export)."""
    after = 0
    while True:
        chunk = _chunk(app, flt, before=None, after=after)
        rows = []
        ended = False
        for position, stored in chunk:
            after = position
            row = present(app, position, stored)
            if flt.since is not None and row["time"] < flt.since:
                continue
            if flt.until is not None and row["time"] >= flt.until:
                ended = True
                break
            if _matches(row, flt):
                rows.append(row)
        yield from _name_actors(rows)
        if ended or len(chunk) < CHUNK:
            return
