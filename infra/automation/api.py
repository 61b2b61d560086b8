"""The automation settings' HTTP shapes, shared by the read side (GET) and the command side
(PUT): admin check, serializers, the domain parsers of the input and the settings in force."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request

from domain.assignment import Policy, parse_policy
from domain.errors import ValidationError
from domain.lifecycle import Priority
from domain.sla import SlaPolicy
from infra.automation import defaults, rules
from infra.automation.models import SINGLETON, TicketIntakeSetting


def require_admin(request: Request) -> None:
    if getattr(request.user, "role", None) != "admin":
        raise PermissionDenied("Only admins manage automation settings.")


def json_object(data: object, field: str = "non_field_errors") -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ValidationError("Expected a JSON object.", field=field)
    return data


# ------------------------------------------------------------------------------ SLA rules
class SlaTargetsSerializer(serializers.Serializer[Any]):
    first_response_minutes = serializers.IntegerField(min_value=1)
    resolution_minutes = serializers.IntegerField(min_value=1)


class SlaSettingsSerializer(serializers.Serializer[Any]):
    low = SlaTargetsSerializer()
    medium = SlaTargetsSerializer()
    high = SlaTargetsSerializer()
    urgent = SlaTargetsSerializer()


def sla_present() -> dict[str, Any]:
    minutes = rules.sla_minutes()
    return {
        p.value: {
            "first_response_minutes": minutes[p.value][0],
            "resolution_minutes": minutes[p.value][1],
        }
        for p in Priority
    }


def parse_sla_settings(data: object) -> list[SlaPolicy]:
    """All four priorities, each exactly ``{first_response_minutes, resolution_minutes}``."""
    body = json_object(data)
    priorities = [p.value for p in Priority]
    for key in body:
        if key not in priorities:
            raise ValidationError(
                f"Unknown priority {key!r}; expected {', '.join(priorities)}.", field=str(key)
            )
    policies = []
    for priority in priorities:
        if priority not in body:
            raise ValidationError(f"Rules for {priority!r} are required.", field=priority)
        targets = json_object(body[priority], priority)
        for key in targets:
            if key not in ("first_response_minutes", "resolution_minutes"):
                raise ValidationError(f"Unknown field {key!r}.", field=f"{priority}.{key}")
        for key in ("first_response_minutes", "resolution_minutes"):
            if key not in targets:
                raise ValidationError(f"{key} is required.", field=f"{priority}.{key}")
        policies.append(
            SlaPolicy.from_minutes(
                priority, targets["first_response_minutes"], targets["resolution_minutes"]
            )
        )
    return policies


# ------------------------------------------------------------------------------ SLA reminders
class SlaReminderSettingsSerializer(serializers.Serializer[Any]):
    minutes_before = serializers.IntegerField(
        min_value=0,
        max_value=defaults.SLA_REMINDER_MAX,
        help_text="Minutes before a first-response or resolution deadline the assigned agent "
        "is reminded (wall-clock time; 0: no reminders).",
    )


def sla_reminder_present() -> dict[str, Any]:
    return {"minutes_before": rules.sla_reminder_minutes()}


def parse_sla_reminder_settings(data: object) -> int:
    body = json_object(data)
    for key in body:
        if key != "minutes_before":
            raise ValidationError(f"Unknown field {key!r}.", field=str(key))
    value = body.get("minutes_before")
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError("minutes_before must be an integer.", field="minutes_before")
    if not 0 <= value <= defaults.SLA_REMINDER_MAX:
        raise ValidationError(
            f"minutes_before must be between 0 and {defaults.SLA_REMINDER_MAX}.",
            field="minutes_before",
        )
    return value


# ------------------------------------------------------------------------------ calendar
class CalendarSerializer(serializers.Serializer[Any]):
    time_zone = serializers.CharField(help_text="IANA time zone, e.g. Europe/Berlin")
    weekly_hours = serializers.DictField(
        child=serializers.ListField(child=serializers.ListField(child=serializers.CharField())),
        help_text='Per weekday (mon..sun), [["09:00", "17:00"], ...]; "24:00" ends a day.',
    )
    holidays = serializers.ListField(child=serializers.DateField(), help_text="Closed all day.")


# ------------------------------------------------------------------------------ assignment
class AssignmentSettingsSerializer(serializers.Serializer[Any]):
    policy = serializers.ChoiceField(choices=[p.value for p in Policy])
    enabled = serializers.BooleanField()


def parse_assignment_settings(data: object) -> tuple[Policy, bool]:
    body = json_object(data)
    for key in body:
        if key not in ("policy", "enabled"):
            raise ValidationError(f"Unknown field {key!r}.", field=str(key))
    if "policy" not in body:
        raise ValidationError("policy is required.", field="policy")
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ValidationError("enabled must be true or false.", field="enabled")
    return parse_policy(body["policy"]), enabled


def assignment_present() -> dict[str, Any]:
    current = rules.assignment_rules()
    return {"policy": current.policy.value, "enabled": current.enabled}


class TicketIntakeSerializer(serializers.Serializer[Any]):
    customers_set_priority = serializers.BooleanField(
        help_text="Whether customers may choose the priority of the tickets they open."
    )


def customers_set_priority() -> bool:
    row = TicketIntakeSetting.objects.filter(id=SINGLETON).first()
    return bool(row and row.customers_set_priority)


def intake_present() -> dict[str, Any]:
    return {"customers_set_priority": customers_set_priority()}


def parse_intake_settings(data: object) -> bool:
    body = json_object(data)
    for key in body:
        if key != "customers_set_priority":
            raise ValidationError(f"Unknown field {key!r}.", field=str(key))
    value = body.get("customers_set_priority")
    if not isinstance(value, bool):
        raise ValidationError(
            "customers_set_priority must be true or false.", field="customers_set_priority"
        )
    return value


def check_customer_intake(role: str, data: Mapping[str, Any]) -> None:
    """A customer's new ticket: tags are refused, and the priority unless the admin allows
    customers to set it (400 naming the field; nothing is stored)."""
    if role != "customer":
        return
    if "tags" in data:
        raise ValidationError("Only staff tag tickets.", field="tags")
    if "priority" in data and not customers_set_priority():
        raise ValidationError("Only staff set the priority of a ticket.", field="priority")
