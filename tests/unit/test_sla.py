"""Business-hours arithmetic and SLA deadlines: midnight, weekends, holidays, DST, pauses."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import ValidationError
from domain.lifecycle import Priority
from domain.sla import (
    BusinessCalendar,
    SlaClock,
    SlaPolicy,
    SlaTarget,
    add_business_time,
    business_deadline,
    business_time_between,
    evaluate,
    merge_pauses,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
H = timedelta(hours=1)
OFFICE = [["09:00", "17:00"]]
WEEKDAYS_9_TO_5 = dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), OFFICE)


def cal(
    tz: str = "Europe/Berlin", hours: dict[str, Any] | None = None, holidays: Any = ()
) -> BusinessCalendar:
    return BusinessCalendar.from_json(
        {
            "time_zone": tz,
            "weekly_hours": WEEKDAYS_9_TO_5 if hours is None else hours,
            "holidays": list(holidays),
        }
    )


def local(zone: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=zone, fold=fold)  # type: ignore[misc]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


# ---------------------------------------------------------------------------- parsing
def test_calendar_round_trips_through_json() -> None:
    c = cal(holidays=["2026-12-25", "2026-12-24"])
    data = c.to_json()
    assert data["holidays"] == ["2026-12-24", "2026-12-25"]
    assert data["weekly_hours"]["mon"] == [["09:00", "17:00"]]
    assert data["weekly_hours"]["sat"] == []
    assert BusinessCalendar.from_json(data) == c


@pytest.mark.parametrize(
    ("data", "field", "detail"),
    [
        ([], "non_field_errors", "Expected an object."),
        ({"weekly_hours": OFFICE}, "time_zone", "time_zone is required."),
        ({"time_zone": "Mars/Olympus", "weekly_hours": {}}, "time_zone", "Unknown time zone"),
        ({"time_zone": 5, "weekly_hours": {}}, "time_zone", "IANA"),
        ({"time_zone": "UTC", "weekly_hours": []}, "weekly_hours", "weekly_hours is an object"),
        ({"time_zone": "UTC", "weekly_hours": {"monday": OFFICE}}, "weekly_hours", "Unknown week"),
        ({"time_zone": "UTC", "weekly_hours": {"mon": [["9:00", "17:00"]]}}, "weekly_hours.mon",
         "Times are 'HH:MM'"),
        ({"time_zone": "UTC", "weekly_hours": {"mon": [["17:00", "09:00"]]}}, "weekly_hours.mon",
         "overnight hours are two entries"),
        ({"time_zone": "UTC", "weekly_hours": {"mon": [["09:00", "24:30"]]}}, "weekly_hours.mon",
         "after 24:00"),
        ({"time_zone": "UTC", "weekly_hours": {"mon": [["09:00", "13:00"], ["12:00", "17:00"]]}},
         "weekly_hours.mon", "overlap"),
        ({"time_zone": "UTC", "weekly_hours": {"mon": [["09:00"]]}}, "weekly_hours.mon",
         "each entry"),
        ({"time_zone": "UTC", "weekly_hours": {}}, "weekly_hours", "At least one weekday"),
        ({"time_zone": "UTC", "weekly_hours": WEEKDAYS_9_TO_5, "holidays": ["25.12.2026"]},
         "holidays", "Holidays are 'YYYY-MM-DD'"),
        ({"time_zone": "UTC", "weekly_hours": WEEKDAYS_9_TO_5, "holidays": "2026-12-25"},
         "holidays", "holidays is a list"),
        ({"time_zone": "UTC", "weekly_hours": WEEKDAYS_9_TO_5, "extra": 1}, "extra", "Unknown"),
    ],
)  # fmt: skip
def test_invalid_calendars_name_the_field(data: Any, field: str, detail: str) -> None:
    with pytest.raises(ValidationError) as err:
        BusinessCalendar.from_json(data)
    assert err.value.data["field"] == field
    assert detail in err.value.detail


def test_working_hours_have_no_holidays() -> None:
    with pytest.raises(ValidationError) as err:
        BusinessCalendar.from_json(
            {"time_zone": "UTC", "weekly_hours": OFFICE and WEEKDAYS_9_TO_5, "holidays": []},
            holidays_allowed=False,
        )
    assert err.value.data["field"] == "holidays"


def test_adjacent_intervals_and_24_00_are_allowed() -> None:
    c = cal(hours={"mon": [["00:00", "08:00"], ["08:00", "24:00"]]})
    assert c.weekly[0] == ((0, 480), (480, 1440))


# ---------------------------------------------------------------------------- adding time
def test_within_one_day() -> None:
    start = local(BERLIN, 2026, 11, 25, 10, 0)  # Wednesday
    assert add_business_time(start, 3 * H, cal()) == local(BERLIN, 2026, 11, 25, 13, 0)


def test_before_opening_starts_counting_at_opening() -> None:
    start = local(BERLIN, 2026, 11, 25, 6, 30)
    assert add_business_time(start, 30 * timedelta(minutes=1), cal()) == local(
        BERLIN, 2026, 11, 25, 9, 30
    )


def test_ending_exactly_at_closing_time_is_closing_time() -> None:
    start = local(BERLIN, 2026, 11, 25, 9, 0)
    assert add_business_time(start, 8 * H, cal()) == local(BERLIN, 2026, 11, 25, 17, 0)


def test_over_the_weekend() -> None:
    friday_4pm = local(BERLIN, 2026, 11, 27, 16, 0)
    assert add_business_time(friday_4pm, 3 * H, cal()) == local(BERLIN, 2026, 11, 30, 11, 0)
    saturday = local(BERLIN, 2026, 11, 28, 12, 0)
    assert add_business_time(saturday, H, cal()) == local(BERLIN, 2026, 11, 30, 10, 0)


def test_around_midnight_with_overnight_hours() -> None:
    # A night shift: Monday 22:00-24:00 and Tuesday 00:00-06:00, in two entries.
    c = cal(hours={"mon": [["22:00", "24:00"]], "tue": [["00:00", "06:00"]]})
    start = local(BERLIN, 2026, 11, 23, 23, 0)  # Monday 23:00
    assert add_business_time(start, 2 * H, c) == local(BERLIN, 2026, 11, 24, 1, 0)
    assert add_business_time(start, H, c) == local(BERLIN, 2026, 11, 24, 0, 0)
    # From Tuesday 05:00, one hour left this week, then next Monday night.
    tue_5am = local(BERLIN, 2026, 11, 24, 5, 0)
    assert add_business_time(tue_5am, 2 * H, c) == local(BERLIN, 2026, 11, 30, 23, 0)


def test_start_exactly_at_midnight() -> None:
    start = local(BERLIN, 2026, 11, 26, 0, 0)
    assert add_business_time(start, H, cal()) == local(BERLIN, 2026, 11, 26, 10, 0)


def test_holidays_are_closed_all_day() -> None:
    c = cal(holidays=["2026-12-24", "2026-12-25"])
    wed = local(BERLIN, 2026, 12, 23, 16, 0)  # 1 h left on Wednesday, then Thu and Fri off
    assert add_business_time(wed, 2 * H, c) == local(BERLIN, 2026, 12, 28, 10, 0)
    assert add_business_time(wed, 2 * H, cal()) == local(BERLIN, 2026, 12, 24, 10, 0)


def test_holidays_are_dates_in_the_calendars_zone() -> None:
    # 2026-12-25 00:30 in Berlin is still 12-24 in UTC: the Berlin holiday applies.
    c = cal(hours=ALL_DAY, holidays=["2026-12-25"])
    start = local(BERLIN, 2026, 12, 25, 0, 30)
    assert add_business_time(start, H, c) == local(BERLIN, 2026, 12, 26, 1, 0)


def test_zero_duration_is_the_start() -> None:
    start = local(BERLIN, 2026, 11, 28, 12, 0)  # a Saturday
    assert add_business_time(start, timedelta(0), cal()) == local(BERLIN, 2026, 11, 30, 9, 0)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        add_business_time(datetime(2026, 11, 25, 10, 0), H, cal())


# ---------------------------------------------------------------------------- DST
def test_spring_forward_day_has_one_hour_less_berlin() -> None:
    c = cal(hours=ALL_DAY)
    day = date(2026, 3, 29)  # 02:00 CET -> 03:00 CEST
    start, end = local(BERLIN, 2026, 3, 29, 0, 0), local(BERLIN, 2026, 3, 30, 0, 0)
    assert business_time_between(start, end, c) == 23 * H
    assert c.day_spans(day) == [(utc(2026, 3, 28, 23, 0), utc(2026, 3, 29, 22, 0))]
    # Six hours from midnight end at 07:00 on the wall clock, not 06:00.
    assert add_business_time(start, 6 * H, c) == local(BERLIN, 2026, 3, 29, 7, 0)


def test_fall_back_day_has_one_hour_more_berlin() -> None:
    c = cal(hours=ALL_DAY)
    start, end = local(BERLIN, 2026, 10, 25, 0, 0), local(BERLIN, 2026, 10, 26, 0, 0)
    assert business_time_between(start, end, c) == 25 * H
    # Three hours from midnight: 01:00, 02:00 (CEST), 02:00 again (CET). (Compared in UTC:
    # Python never finds a time in the repeated hour equal to one in another zone.)
    second_two_am = local(BERLIN, 2026, 10, 25, 2, 0, fold=1).astimezone(UTC)
    assert second_two_am == utc(2026, 10, 25, 1, 0)
    assert add_business_time(start, 3 * H, c) == second_two_am


def test_opening_time_skipped_by_spring_forward_opens_when_clocks_jump() -> None:
    # Open 02:30-04:00 on Sundays: on the change day 02:30 never shows; it opens at 03:00.
    c = cal(hours={"sun": [["02:30", "04:00"]]})
    assert c.day_spans(date(2026, 3, 29)) == [(utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 2, 0))]
    assert c.day_spans(date(2026, 3, 22)) == [(utc(2026, 3, 22, 1, 30), utc(2026, 3, 22, 3, 0))]
    # Entirely inside the gap: no business time at all that day.
    gap = cal(hours={"sun": [["02:10", "02:50"]]})
    assert gap.day_spans(date(2026, 3, 29)) == []


def test_repeated_hour_means_its_first_occurrence() -> None:
    c = cal(hours={"sun": [["02:30", "03:30"]]})
    # 02:30 CEST (00:30 UTC) to 03:30 CET (02:30 UTC): two real hours on the change day.
    assert c.day_spans(date(2026, 10, 25)) == [(utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 2, 30))]


def test_office_hours_across_dst_in_new_york() -> None:
    c = cal("America/New_York")
    # Friday 16:00 EST (before DST begins on Sunday March 8, 2026), 2 h: Monday 10:00 EDT.
    friday = local(NEW_YORK, 2026, 3, 6, 16, 0)
    assert add_business_time(friday, 2 * H, c) == local(NEW_YORK, 2026, 3, 9, 10, 0)
    assert add_business_time(friday, 2 * H, c) - friday == timedelta(days=2, hours=17)
    # Fall back (November 1, 2026): Friday 16:00 EDT + 2 h = Monday 10:00 EST.
    friday = local(NEW_YORK, 2026, 10, 30, 16, 0)
    assert add_business_time(friday, 2 * H, c) == local(NEW_YORK, 2026, 11, 2, 10, 0)
    assert add_business_time(friday, 2 * H, c) - friday == timedelta(days=2, hours=19)


def test_around_the_clock_in_new_york_spring_forward() -> None:
    c = cal("America/New_York", hours=ALL_DAY)
    start = local(NEW_YORK, 2026, 3, 8, 1, 0)
    assert add_business_time(start, 2 * H, c) == local(NEW_YORK, 2026, 3, 8, 4, 0)


# ---------------------------------------------------------------------------- pauses
def test_a_pause_inside_business_hours_moves_the_deadline() -> None:
    start = local(BERLIN, 2026, 11, 25, 9, 0)
    pause = (local(BERLIN, 2026, 11, 25, 10, 0), local(BERLIN, 2026, 11, 25, 12, 0))
    assert business_deadline(start, 4 * H, cal(), [pause]) == local(BERLIN, 2026, 11, 25, 15, 0)
    end = local(BERLIN, 2026, 11, 25, 17, 0)
    assert business_time_between(start, end, cal(), [pause]) == 6 * H


def test_a_pause_outside_business_hours_changes_nothing() -> None:
    start = local(BERLIN, 2026, 11, 27, 16, 0)  # Friday
    weekend = (local(BERLIN, 2026, 11, 27, 18, 0), local(BERLIN, 2026, 11, 30, 8, 0))
    assert business_deadline(start, 3 * H, cal(), [weekend]) == add_business_time(
        start, 3 * H, cal()
    )


def test_an_open_pause_stops_the_clock() -> None:
    start = local(BERLIN, 2026, 11, 25, 9, 0)
    waiting = (local(BERLIN, 2026, 11, 25, 11, 0), None)
    assert business_deadline(start, 4 * H, cal(), [waiting]) is None
    # ... unless the target was reached before the pause began.
    assert business_deadline(start, H, cal(), [waiting]) == local(BERLIN, 2026, 11, 25, 10, 0)


def test_a_pause_across_midnight_and_the_weekend() -> None:
    start = local(BERLIN, 2026, 11, 26, 15, 0)  # Thursday
    pause = (local(BERLIN, 2026, 11, 26, 16, 0), local(BERLIN, 2026, 11, 30, 10, 0))
    # 1 h Thursday, paused until Monday 10:00, then 2 h more.
    assert business_deadline(start, 3 * H, cal(), [pause]) == local(BERLIN, 2026, 11, 30, 12, 0)


def test_overlapping_pauses_are_merged() -> None:
    a, b, c, d = (utc(2026, 1, 1, h) for h in (1, 3, 2, 5))
    assert merge_pauses([(c, d), (a, b)]) == [(a, d)]
    assert merge_pauses([(a, None), (c, d)]) == [(a, None)]
    with pytest.raises(ValueError, match="ends before"):
        merge_pauses([(b, a)])


# ---------------------------------------------------------------------------- SLA targets
POLICY = SlaPolicy(Priority.HIGH, first_response=2 * H, resolution=8 * H)


def test_evaluate_deadlines_met_and_breached() -> None:
    opened = local(BERLIN, 2026, 11, 25, 9, 0)
    clock = SlaClock(opened_at=opened, first_response_at=local(BERLIN, 2026, 11, 25, 12, 0))
    states = evaluate(clock, POLICY, cal())
    first, resolution = states[SlaTarget.FIRST_RESPONSE], states[SlaTarget.RESOLUTION]
    assert first.due == local(BERLIN, 2026, 11, 25, 11, 0)
    assert first.breached(local(BERLIN, 2026, 11, 25, 11, 0))  # answered at 12:00: late
    assert not first.breached(local(BERLIN, 2026, 11, 25, 10, 59))
    assert resolution.due == local(BERLIN, 2026, 11, 25, 17, 0)
    assert not resolution.breached(local(BERLIN, 2026, 11, 25, 16, 59))
    assert resolution.breached(local(BERLIN, 2026, 11, 25, 17, 0))


def test_a_target_met_in_time_is_never_breached() -> None:
    opened = local(BERLIN, 2026, 11, 25, 9, 0)
    clock = SlaClock(opened_at=opened, first_response_at=local(BERLIN, 2026, 11, 25, 10, 0))
    first = evaluate(clock, POLICY, cal())[SlaTarget.FIRST_RESPONSE]
    assert not first.breached(local(BERLIN, 2027, 1, 1, 0, 0))


def test_resolved_before_the_deadline_stops_the_clock() -> None:
    opened = local(BERLIN, 2026, 11, 25, 9, 0)
    resolved = local(BERLIN, 2026, 11, 25, 10, 0)
    clock = SlaClock(opened_at=opened, pauses=((resolved, None),), resolved_at=resolved)
    states = evaluate(clock, POLICY, cal())
    assert states[SlaTarget.RESOLUTION].due is None
    assert states[SlaTarget.FIRST_RESPONSE].due is None
    assert not states[SlaTarget.RESOLUTION].breached(local(BERLIN, 2026, 12, 25, 0, 0))


def test_policy_from_minutes_is_validated() -> None:
    policy = SlaPolicy.from_minutes("urgent", 60, 480)
    assert policy.describe() == "urgent: first response 1 h, resolution 8 h of business time"
    with pytest.raises(ValidationError) as err:
        SlaPolicy.from_minutes("urgent", 60, 30)
    assert err.value.data["field"] == "urgent.resolution_minutes"
    with pytest.raises(ValidationError) as err:
        SlaPolicy.from_minutes("urgent", True, 30)
    assert err.value.data["field"] == "urgent.first_response_minutes"
    with pytest.raises(ValidationError) as err:
        SlaPolicy.from_minutes("urgent", 0, 30)
    assert err.value.data["field"] == "urgent.first_response_minutes"
    with pytest.raises(ValidationError) as err:
        SlaPolicy.from_minutes(["x"], 1, 30)
    assert err.value.data["field"] == "priority"


# ---------------------------------------------------------------------------- properties
ZONES = ["Europe/Berlin", "America/New_York", "UTC", "Australia/Lord_Howe", "Asia/Kolkata"]
HOURS = st.sampled_from(
    [
        WEEKDAYS_9_TO_5,
        ALL_DAY,
        {"mon": [["22:00", "24:00"]], "tue": [["00:00", "06:00"]], "sun": [["01:30", "03:30"]]},
        {d: [["08:00", "12:00"], ["13:00", "17:30"]] for d in ("mon", "wed", "fri", "sat")},
    ]
)
calendars = st.builds(
    lambda tz, hours, holidays: cal(tz, hours, [d.isoformat() for d in holidays]),
    st.sampled_from(ZONES),
    HOURS,
    st.lists(st.dates(date(2026, 1, 1), date(2027, 12, 31)), max_size=8),
)
moments = st.datetimes(datetime(2026, 1, 1), datetime(2027, 6, 30), timezones=st.just(UTC))
durations = st.integers(0, 60 * 60 * 24 * 20).map(lambda s: timedelta(seconds=s))


@settings(max_examples=150, deadline=None)
@given(calendars, moments, durations, durations)
def test_adding_more_time_never_ends_earlier(
    c: BusinessCalendar, start: datetime, a: Any, b: Any
) -> None:
    short, long = sorted((a, b))
    assert add_business_time(start, short, c) <= add_business_time(start, long, c)


@settings(max_examples=150, deadline=None)
@given(calendars, moments, moments, durations)
def test_a_later_start_never_ends_earlier(c: BusinessCalendar, s1: Any, s2: Any, d: Any) -> None:
    early, late = sorted((s1, s2))
    assert add_business_time(early, d, c) <= add_business_time(late, d, c)


@settings(max_examples=150, deadline=None)
@given(calendars, moments, durations)
def test_adding_then_measuring_gives_the_duration_back(
    c: BusinessCalendar, start: datetime, d: timedelta
) -> None:
    end = add_business_time(start, d, c)
    assert business_time_between(start, end, c) == d
    assert c.is_open(end - timedelta(microseconds=1)) or d == timedelta(0)


@settings(max_examples=150, deadline=None)
@given(calendars, moments, moments, moments)
def test_business_time_is_additive(c: BusinessCalendar, a: Any, b: Any, x: Any) -> None:
    a, x, b = sorted((a, b, x))
    assert business_time_between(a, x, c) + business_time_between(x, b, c) == (
        business_time_between(a, b, c)
    )


@settings(max_examples=150, deadline=None)
@given(calendars, moments, durations, moments, durations)
def test_pauses_outside_business_hours_change_no_deadline(
    c: BusinessCalendar, start: datetime, d: timedelta, p_start: datetime, p_len: timedelta
) -> None:
    pause_end = p_start + p_len
    if business_time_between(p_start, pause_end, c) != timedelta(0):
        # The pause covers business time: the deadline moves by exactly that much work.
        deadline = business_deadline(start, d, c, [(p_start, pause_end)])
        assert deadline is not None
        assert deadline >= add_business_time(start, d, c)
        assert business_time_between(start, deadline, c, [(p_start, pause_end)]) == d
    else:
        assert business_deadline(start, d, c, [(p_start, pause_end)]) == add_business_time(
            start, d, c
        )


@settings(max_examples=150, deadline=None)
@given(calendars, moments, moments, moments, durations)
def test_elapsed_time_without_a_pause_is_elapsed_minus_the_paused_business_time(
    c: BusinessCalendar, start: datetime, now: datetime, p_start: datetime, p_len: timedelta
) -> None:
    start, now = sorted((start, now))
    pause = (p_start, p_start + p_len)
    inside = business_time_between(max(start, pause[0]), min(now, pause[1]), c)
    assert business_time_between(start, now, c, [pause]) == (
        business_time_between(start, now, c) - inside
    )
