"""Business-hours calendars and SLA deadlines, as pure functions.

A calendar is opening hours per weekday in an IANA time zone, minus whole-day holidays.
Business time is real elapsed time (what a stopwatch shows) inside opening hours, so a
day with a daylight-saving change has as many business hours as really pass in its
opening hours. A wall time that does not exist (skipped when clocks spring forward)
happens when the clocks jump; one that exists twice (when they fall back) means its first
occurrence. The same calendar type describes an agent's working hours (without holidays).

An SLA clock starts when the ticket is opened and is paused while the ticket waits on the
customer or is resolved (and stops for good when it is closed); a target's deadline is the
moment its business time, without the pauses, reaches the target.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.errors import ValidationError
from domain.lifecycle import Priority

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_MINUTES = 24 * 60
HOLIDAYS_MAX = 500
INTERVALS_PER_DAY_MAX = 12
# How far a search for opening hours looks ahead before it concludes there are none left.
SEARCH_DAYS = 4 * 366

Minutes = tuple[int, int]  # [start, end) in minutes after local midnight; 24:00 is 1440
Span = tuple[datetime, datetime]
Pause = tuple[datetime, datetime | None]  # end None: still paused

_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


def _zone(name: object, field: str) -> ZoneInfo:
    if not isinstance(name, str) or not name or len(name) > 64:
        raise ValidationError("time_zone must be an IANA time zone name.", field=field)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"Unknown time zone {name!r}.", field=field) from None


def _minutes(value: object, field: str) -> int:
    match = _HHMM.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValidationError(f"Times are 'HH:MM' strings, got {value!r}.", field=field)
    minutes = int(match.group(1)) * 60 + int(match.group(2))
    if minutes > DAY_MINUTES:
        raise ValidationError(f"{value!r} is after 24:00.", field=field)
    return minutes


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class BusinessCalendar:
    """Opening hours per weekday (Monday first) in ``time_zone``, closed on ``holidays``."""

    time_zone: str
    weekly: tuple[tuple[Minutes, ...], ...]
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if len(self.weekly) != 7:
            raise ValidationError("Give opening hours for 7 weekdays.", field="weekly_hours")
        _zone(self.time_zone, "time_zone")

    # ------------------------------------------------------------------ JSON
    @classmethod
    def from_json(cls, data: object, *, holidays_allowed: bool = True) -> BusinessCalendar:
        """Parse and validate ``{"time_zone", "weekly_hours": {"mon": [["09:00", "17:00"]]},
        "holidays": ["2026-12-25"]}``; every problem is a ``ValidationError`` naming its field."""
        if not isinstance(data, Mapping):
            raise ValidationError("Expected an object.", field="non_field_errors")
        allowed = {"time_zone", "weekly_hours"} | ({"holidays"} if holidays_allowed else set())
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValidationError(f"Unknown field {unknown[0]!r}.", field=str(unknown[0]))
        if "time_zone" not in data:
            raise ValidationError("time_zone is required.", field="time_zone")
        zone = _zone(data["time_zone"], "time_zone")
        weekly = _parse_weekly(data.get("weekly_hours"))
        holidays = _parse_holidays(data.get("holidays", [])) if holidays_allowed else frozenset()
        return cls(zone.key, weekly, holidays)

    def to_json(self, *, with_holidays: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "time_zone": self.time_zone,
            "weekly_hours": {
                day: [[_hhmm(a), _hhmm(b)] for a, b in self.weekly[i]]
                for i, day in enumerate(WEEKDAYS)
            },
        }
        if with_holidays:
            out["holidays"] = [d.isoformat() for d in sorted(self.holidays)]
        return out

    # ------------------------------------------------------------------ queries
    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def day_spans(self, day: date) -> list[Span]:
        """The opening hours of a local calendar day, as UTC spans (none on holidays)."""
        if day in self.holidays:
            return []
        zone = self.zone
        spans = []
        for start, end in self.weekly[day.weekday()]:
            a, b = _utc(day, start, zone), _utc(day, end, zone)
            if a < b:
                spans.append((a, b))
        return spans

    def is_open(self, moment: datetime) -> bool:
        local_day = moment.astimezone(self.zone).date()
        for day in (local_day - timedelta(days=1), local_day):
            if any(a <= moment < b for a, b in self.day_spans(day)):
                return True
        return False

    def spans(self, start: datetime, end: datetime | None = None) -> Iterator[Span]:
        """Opening hours from ``start`` (to ``end``), clipped, in order, as UTC spans."""
        # All arithmetic in UTC: Python adds to an aware datetime in its own zone by wall time.
        start = _as_utc(start, "start")
        end = None if end is None else _as_utc(end, "end")
        day = start.astimezone(self.zone).date() - timedelta(days=1)
        empty_days = 0
        while empty_days < SEARCH_DAYS:
            found = False
            for a, b in self.day_spans(day):
                if end is not None and a >= end:
                    return
                a, b = max(a, start), b if end is None else min(b, end)
                if a < b:
                    found = True
                    yield a, b
            if end is not None and _utc(day + timedelta(days=1), 0, self.zone) >= end:
                return
            empty_days = 0 if found else empty_days + 1
            day += timedelta(days=1)


def _parse_weekly(value: object) -> tuple[tuple[Minutes, ...], ...]:
    if not isinstance(value, Mapping):
        raise ValidationError(
            'weekly_hours is an object like {"mon": [["09:00", "17:00"]]}.', field="weekly_hours"
        )
    unknown = sorted(set(value) - set(WEEKDAYS))
    if unknown:
        raise ValidationError(
            f"Unknown weekday {unknown[0]!r}; use {', '.join(WEEKDAYS)}.", field="weekly_hours"
        )
    week: list[tuple[Minutes, ...]] = []
    for day in WEEKDAYS:
        raw = value.get(day, [])
        field = f"weekly_hours.{day}"
        if not isinstance(raw, list) or len(raw) > INTERVALS_PER_DAY_MAX:
            raise ValidationError(
                f"{day}: a list of at most {INTERVALS_PER_DAY_MAX} [start, end] pairs.",
                field=field,
            )
        intervals: list[Minutes] = []
        for pair in raw:
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                raise ValidationError(f'{day}: each entry is ["HH:MM", "HH:MM"].', field=field)
            start, end = _minutes(pair[0], field), _minutes(pair[1], field)
            if start >= end:
                raise ValidationError(
                    f"{day}: {pair[0]}-{pair[1]} ends before it starts (overnight hours are "
                    "two entries: until 24:00, then from 00:00 the next day).",
                    field=field,
                )
            intervals.append((start, end))
        intervals.sort()
        for (_, end), (start, _) in pairwise(intervals):
            if start < end:
                raise ValidationError(f"{day}: opening hours overlap.", field=field)
        week.append(tuple(intervals))
    if not any(week):
        raise ValidationError("At least one weekday needs opening hours.", field="weekly_hours")
    return tuple(week)


def _parse_holidays(value: object) -> frozenset[date]:
    if not isinstance(value, list) or len(value) > HOLIDAYS_MAX:
        raise ValidationError(
            f"holidays is a list of at most {HOLIDAYS_MAX} 'YYYY-MM-DD' dates.", field="holidays"
        )
    days = set()
    for item in value:
        try:
            if not isinstance(item, str) or len(item) != 10:
                raise ValueError
            days.add(date.fromisoformat(item))
        except ValueError:
            raise ValidationError(
                f"Holidays are 'YYYY-MM-DD' dates, got {item!r}.", field="holidays"
            ) from None
    return frozenset(days)


def _as_utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return moment.astimezone(UTC)


def _utc(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """The instant a local wall time happens (see the module docstring for DST edges)."""
    if minutes >= DAY_MINUTES:
        day, minutes = day + timedelta(days=minutes // DAY_MINUTES), minutes % DAY_MINUTES
    wall = datetime(day.year, day.month, day.day, minutes // 60, minutes % 60)
    first = wall.replace(tzinfo=zone).astimezone(UTC)  # fold=0: the first of two
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # Skipped by a spring-forward change: find the instant the clocks jumped over it.
    low = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)  # shown as a time before the gap
    high = first  # shown as a time after it
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)  # zone changes happen on whole seconds


# ---------------------------------------------------------------------------- business time
def merge_pauses(pauses: Iterable[Pause]) -> list[Pause]:
    """Sorted, non-overlapping pauses (an open one swallows everything after its start)."""
    ordered = sorted(
        (
            (_as_utc(start, "pause start"), None if end is None else _as_utc(end, "pause end"))
            for start, end in pauses
        ),
        key=lambda p: p[0],
    )
    merged: list[Pause] = []
    for start, end in ordered:
        if end is not None and end < start:
            raise ValueError("a pause ends before it starts")
        if merged:
            last_start, last_end = merged[-1]
            if last_end is None:
                break
            if start <= last_end:
                merged[-1] = (last_start, None if end is None else max(last_end, end))
                continue
        merged.append((start, end))
    return merged


def _without(spans: Iterable[Span], pauses: Sequence[Pause]) -> Iterator[Span]:
    """``spans`` minus ``pauses`` (both in time order); ends where a pause never ends."""
    merged = merge_pauses(pauses)
    i = 0
    for span_start, span_end in spans:
        a = span_start
        while True:
            while i < len(merged) and (ended := merged[i][1]) is not None and ended <= a:
                i += 1
            if i == len(merged) or merged[i][0] >= span_end:
                yield a, span_end  # no pause overlaps the rest of this span
                break
            pause_start, pause_end = merged[i]
            if pause_start > a:
                yield a, pause_start
            if pause_end is None:
                return
            if pause_end >= span_end:
                break
            a = pause_end


def business_time_between(
    start: datetime, end: datetime, calendar: BusinessCalendar, pauses: Sequence[Pause] = ()
) -> timedelta:
    """Business time in ``[start, end)``, not counting the pauses."""
    _as_utc(end, "end")
    total = timedelta(0)
    if end <= start:
        return total
    for a, b in _without(calendar.spans(start, end), pauses):
        total += b - a
    return total


def business_deadline(
    start: datetime,
    duration: timedelta,
    calendar: BusinessCalendar,
    pauses: Sequence[Pause] = (),
) -> datetime | None:
    """When ``duration`` of business time has passed since ``start``, not counting the
    pauses; None if a pause that has not ended stops the clock before that."""
    if duration < timedelta(0):
        raise ValueError("duration must not be negative")
    remaining = duration
    last = _as_utc(start, "start")
    for a, b in _without(calendar.spans(start), pauses):
        span = b - a
        if span >= remaining:
            return a + remaining
        remaining -= span
        last = b
    merged = merge_pauses(pauses)
    if merged and merged[-1][1] is None:
        return None
    raise ValidationError(
        f"The calendar has no business hours after {last.isoformat()}.", field="weekly_hours"
    )


def add_business_time(start: datetime, duration: timedelta, calendar: BusinessCalendar) -> datetime:
    """``start`` plus ``duration`` of business time: the moment it is used up."""
    deadline = business_deadline(start, duration, calendar)
    assert deadline is not None  # only an open pause can stop the clock
    return deadline


# ---------------------------------------------------------------------------- SLA
class SlaTarget(StrEnum):
    FIRST_RESPONSE = "first_response"
    RESOLUTION = "resolution"


def parse_target(value: object) -> SlaTarget:
    try:
        return SlaTarget(value if isinstance(value, str) else "")
    except ValueError:
        allowed = ", ".join(t.value for t in SlaTarget)
        raise ValidationError(
            f"Unknown SLA target {value!r}; expected one of {allowed}.", field="target"
        ) from None


SLA_MINUTES_MAX = 366 * DAY_MINUTES


@dataclass(frozen=True)
class SlaPolicy:
    """The targets for tickets of one priority, in business time."""

    priority: Priority
    first_response: timedelta
    resolution: timedelta

    def target(self, target: SlaTarget) -> timedelta:
        return self.first_response if target is SlaTarget.FIRST_RESPONSE else self.resolution

    def describe(self) -> str:
        return (
            f"{self.priority.value}: first response {_duration(self.first_response)}, "
            f"resolution {_duration(self.resolution)} of business time"
        )

    @classmethod
    def from_minutes(
        cls, priority: object, first_response: object, resolution: object
    ) -> SlaPolicy:
        if not isinstance(priority, str) or priority not in {p.value for p in Priority}:
            raise ValidationError(f"Unknown priority {priority!r}.", field="priority")
        prio = Priority(priority)
        values = []
        for name, value in (("first_response_minutes", first_response),
                            ("resolution_minutes", resolution)):  # fmt: skip
            field = f"{prio.value}.{name}"
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValidationError(f"{name} must be an integer.", field=field)
            if not 1 <= value <= SLA_MINUTES_MAX:
                raise ValidationError(
                    f"{name} must be between 1 and {SLA_MINUTES_MAX}.", field=field
                )
            values.append(value)
        if values[1] < values[0]:
            raise ValidationError(
                "resolution_minutes must not be shorter than first_response_minutes.",
                field=f"{prio.value}.resolution_minutes",
            )
        return cls(prio, timedelta(minutes=values[0]), timedelta(minutes=values[1]))


def _duration(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    hours, rest = divmod(minutes, 60)
    if hours and rest:
        return f"{hours} h {rest} min"
    return f"{hours} h" if hours else f"{rest} min"


@dataclass(frozen=True)
class SlaClock:
    """What a ticket's deadlines depend on: when it opened, its pauses, when targets were met."""

    opened_at: datetime
    pauses: tuple[Pause, ...] = ()
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None  # resolved or closed now: the resolution target is met


@dataclass(frozen=True)
class TargetState:
    target: SlaTarget
    due: datetime | None  # None: the clock stopped (paused, resolved) before the target
    met_at: datetime | None

    def breached(self, now: datetime) -> bool:
        """The deadline passed before the target was met (or it is still unmet now)."""
        if self.due is None or self.due > now:
            return False
        return self.met_at is None or self.met_at > self.due


def evaluate(
    clock: SlaClock, policy: SlaPolicy, calendar: BusinessCalendar
) -> dict[SlaTarget, TargetState]:
    """Both targets' deadlines and whether (and when) they were met."""
    out = {}
    for target, met in (
        (SlaTarget.FIRST_RESPONSE, clock.first_response_at),
        (SlaTarget.RESOLUTION, clock.resolved_at),
    ):
        due = _deadline(clock.opened_at, policy.target(target), calendar, clock.pauses)
        out[target] = TargetState(target, due, met)
    return out


def _deadline(
    start: datetime, duration: timedelta, calendar: BusinessCalendar, pauses: tuple[Pause, ...]
) -> datetime | None:
    """``business_deadline``, remembered: the SLA projector recomputes a ticket's deadlines
    on each of its events (a reply changes none of their inputs), and walking the calendar
    was most of that projector's CPU. Only for UTC times, so a remembered answer is the very
    value (not merely the same instant) a fresh computation would give."""
    if start.tzinfo is UTC and all(
        a.tzinfo is UTC and (b is None or b.tzinfo is UTC) for a, b in pauses
    ):
        return _remembered_deadline(start, duration, calendar, pauses)
    return business_deadline(start, duration, calendar, pauses)


@functools.lru_cache(maxsize=8192)
def _remembered_deadline(
    start: datetime, duration: timedelta, calendar: BusinessCalendar, pauses: tuple[Pause, ...]
) -> datetime | None:
    return business_deadline(start, duration, calendar, pauses)
