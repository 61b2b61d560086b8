"""The settings in force, as domain objects: what the SLA projector, the SLA check and the
assignment manager read (a missing row means the built-in default)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import connection
from psycopg import sql

from domain.assignment import Policy, parse_policy
from domain.lifecycle import Priority
from domain.sla import BusinessCalendar, SlaPolicy
from infra.automation import defaults
from infra.automation.models import (
    AssignmentSetting,
    BusinessCalendarSetting,
    SlaPolicySetting,
    SlaReminderSetting,
)


@dataclass(frozen=True)
class SlaRules:
    """``projections.sla.SlaRules``: a policy per priority and the business calendar."""

    policies: dict[Priority, SlaPolicy]
    business_calendar: BusinessCalendar

    def policy(self, priority: Priority) -> SlaPolicy:
        return self.policies[priority]

    def calendar(self) -> BusinessCalendar:
        return self.business_calendar

    def fingerprint(self) -> str:
        """Changes whenever a deadline could change."""
        data = {
            "policies": {
                p.value: [v.first_response.total_seconds(), v.resolution.total_seconds()]
                for p, v in sorted(self.policies.items())
            },
            "calendar": self.business_calendar.to_json(),
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


# Plain SQL, not the ORM: the SLA projector and the assignment manager read the rules on
# every batch, and compiling these queries was a tenth of the projector process's CPU.
# The tables are the models' (their Meta says where), read without the ORM.
def _select(text: str, model: Any) -> str:
    return sql.SQL(text).format(sql.Identifier(model._meta.db_table)).as_string(None)


_SLA_SQL = _select(
    "SELECT priority, first_response_minutes, resolution_minutes FROM {}", SlaPolicySetting
)
_CALENDAR_SQL = _select(
    "SELECT time_zone, weekly_hours, holidays FROM {} ORDER BY id LIMIT 1",
    BusinessCalendarSetting,
)
_REMINDER_SQL = _select("SELECT minutes_before FROM {} ORDER BY id LIMIT 1", SlaReminderSetting)
_ASSIGNMENT_SQL = _select("SELECT policy, enabled FROM {} ORDER BY id LIMIT 1", AssignmentSetting)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value  # Django leaves jsonb as text


def _policy_rows() -> list[tuple[Any, ...]]:
    with connection.cursor() as cur:
        cur.execute(_SLA_SQL)
        return sorted(cur.fetchall())


def _calendar_row() -> tuple[Any, ...] | None:
    with connection.cursor() as cur:
        cur.execute(_CALENDAR_SQL)
        row: tuple[Any, ...] | None = cur.fetchone()
        return row


def _sla_rows() -> tuple[list[tuple[Any, ...]], tuple[Any, ...] | None]:
    return _policy_rows(), _calendar_row()


def _minutes(policies: list[tuple[Any, ...]]) -> dict[str, tuple[int, int]]:
    out = dict(defaults.SLA_MINUTES)
    for priority, first, resolution in policies:
        out[priority] = (first, resolution)
    return out


def _calendar(row: tuple[Any, ...] | None) -> dict[str, Any]:
    if row is None:
        return dict(defaults.CALENDAR)
    time_zone, weekly_hours, holidays = row
    return {
        "time_zone": time_zone,
        "weekly_hours": _json(weekly_hours),
        "holidays": _json(holidays),
    }


def sla_minutes() -> dict[str, tuple[int, int]]:
    return _minutes(_policy_rows())


def calendar_json() -> dict[str, Any]:
    return _calendar(_calendar_row())


_last_sla: tuple[Any, SlaRules] | None = None  # (the rows, the rules parsed from them)


def sla_rules() -> SlaRules:
    """The rules in force (read every time; parsed again only when the rows changed)."""
    global _last_sla
    rows = _sla_rows()
    last = _last_sla
    if last is not None and last[0] == rows:
        return last[1]
    policies = {
        Priority(p): SlaPolicy.from_minutes(p, first, resolution)
        for p, (first, resolution) in _minutes(rows[0]).items()
    }
    rules = SlaRules(policies, BusinessCalendar.from_json(_calendar(rows[1])))
    _last_sla = (rows, rules)
    return rules


@dataclass(frozen=True)
class AssignmentRules:
    policy: Policy
    enabled: bool


def assignment_rules() -> AssignmentRules:
    with connection.cursor() as cur:
        cur.execute(_ASSIGNMENT_SQL)
        row = cur.fetchone()
    if row is None:
        return AssignmentRules(Policy(defaults.ASSIGNMENT_POLICY), True)
    policy, enabled = row
    return AssignmentRules(parse_policy(policy), enabled)


def sla_reminder_minutes() -> int:
    """Minutes before an SLA deadline the assigned agent is reminded (0: no reminders)."""
    with connection.cursor() as cur:
        cur.execute(_REMINDER_SQL)
        row = cur.fetchone()
    return defaults.SLA_REMINDER_MINUTES if row is None else int(row[0])
