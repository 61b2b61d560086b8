"""The settings in force, as domain objects: what the SLA projector, the SLA check and the
assignment manager read (a missing row means the built-in default)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from domain.assignment import Policy, parse_policy
from domain.lifecycle import Priority
from domain.sla import BusinessCalendar, SlaPolicy
from infra.automation import defaults
from infra.automation.models import AssignmentSetting, BusinessCalendarSetting, SlaPolicySetting


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


def sla_minutes() -> dict[str, tuple[int, int]]:
    out = dict(defaults.SLA_MINUTES)
    for row in SlaPolicySetting.objects.all():
        out[row.priority] = (row.first_response_minutes, row.resolution_minutes)
    return out


def calendar_json() -> dict[str, Any]:
    row = BusinessCalendarSetting.objects.first()
    if row is None:
        return dict(defaults.CALENDAR)
    return {"time_zone": row.time_zone, "weekly_hours": row.weekly_hours, "holidays": row.holidays}


def sla_rules() -> SlaRules:
    policies = {
        Priority(p): SlaPolicy.from_minutes(p, first, resolution)
        for p, (first, resolution) in sla_minutes().items()
    }
    return SlaRules(policies, BusinessCalendar.from_json(calendar_json()))


@dataclass(frozen=True)
class AssignmentRules:
    policy: Policy
    enabled: bool


def assignment_rules() -> AssignmentRules:
    row = AssignmentSetting.objects.first()
    if row is None:
        return AssignmentRules(Policy(defaults.ASSIGNMENT_POLICY), True)
    return AssignmentRules(parse_policy(row.policy), row.enabled)
