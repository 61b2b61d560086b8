"""Admin endpoints for the automation settings: SLA rules, business calendar, assignment policy.

``GET`` shows the settings in force, ``PUT`` replaces them. Only admins may use them (403
``forbidden`` otherwise). Input is validated strictly by the domain's own parsers: anything
wrong is a 400 ``{error, detail, fields}`` naming the field. A change applies to the next
decision of the assignment manager and the next SLA check (which also refreshes every open
ticket's deadlines).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from domain.assignment import Policy, parse_policy
from domain.errors import ValidationError
from domain.lifecycle import Priority
from domain.sla import BusinessCalendar, SlaPolicy
from infra.automation import rules
from infra.automation.models import (
    SINGLETON,
    AssignmentSetting,
    BusinessCalendarSetting,
    SlaPolicySetting,
)


def _require_admin(request: Request) -> None:
    if getattr(request.user, "role", None) != "admin":
        raise PermissionDenied("Only admins manage automation settings.")


def _object(data: object, field: str = "non_field_errors") -> Mapping[str, Any]:
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


def _sla_present() -> dict[str, Any]:
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
    body = _object(data)
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
        targets = _object(body[priority], priority)
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


@extend_schema(tags=["settings"])
class SlaSettingsView(APIView):
    @extend_schema(responses={200: SlaSettingsSerializer})
    def get(self, request: Request) -> Response:
        _require_admin(request)
        return Response(_sla_present())

    @extend_schema(request=SlaSettingsSerializer, responses={200: SlaSettingsSerializer})
    def put(self, request: Request) -> Response:
        """Replace the SLA rules: business minutes per priority for both targets."""
        _require_admin(request)
        policies = parse_sla_settings(request.data)
        with transaction.atomic():
            for policy in policies:
                SlaPolicySetting.objects.update_or_create(
                    priority=policy.priority.value,
                    defaults={
                        "first_response_minutes": int(policy.first_response.total_seconds() // 60),
                        "resolution_minutes": int(policy.resolution.total_seconds() // 60),
                        "updated_by": str(request.user.pk),
                    },
                )
        return Response(_sla_present())


# ------------------------------------------------------------------------------ calendar
class CalendarSerializer(serializers.Serializer[Any]):
    time_zone = serializers.CharField(help_text="IANA time zone, e.g. Europe/Berlin")
    weekly_hours = serializers.DictField(
        child=serializers.ListField(child=serializers.ListField(child=serializers.CharField())),
        help_text='Per weekday (mon..sun), [["09:00", "17:00"], ...]; "24:00" ends a day.',
    )
    holidays = serializers.ListField(child=serializers.DateField(), help_text="Closed all day.")


@extend_schema(tags=["settings"])
class CalendarSettingsView(APIView):
    @extend_schema(responses={200: CalendarSerializer})
    def get(self, request: Request) -> Response:
        _require_admin(request)
        return Response(BusinessCalendar.from_json(rules.calendar_json()).to_json())

    @extend_schema(request=CalendarSerializer, responses={200: CalendarSerializer})
    def put(self, request: Request) -> Response:
        """Replace the business calendar that SLA deadlines are counted in."""
        _require_admin(request)
        calendar = BusinessCalendar.from_json(_object(request.data))
        stored = calendar.to_json()
        BusinessCalendarSetting.objects.update_or_create(
            id=SINGLETON,
            defaults={
                "time_zone": stored["time_zone"],
                "weekly_hours": stored["weekly_hours"],
                "holidays": stored["holidays"],
                "updated_by": str(request.user.pk),
            },
        )
        return Response(stored)


# ------------------------------------------------------------------------------ assignment
class AssignmentSettingsSerializer(serializers.Serializer[Any]):
    policy = serializers.ChoiceField(choices=[p.value for p in Policy])
    enabled = serializers.BooleanField()


def parse_assignment_settings(data: object) -> tuple[Policy, bool]:
    body = _object(data)
    for key in body:
        if key not in ("policy", "enabled"):
            raise ValidationError(f"Unknown field {key!r}.", field=str(key))
    if "policy" not in body:
        raise ValidationError("policy is required.", field="policy")
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ValidationError("enabled must be true or false.", field="enabled")
    return parse_policy(body["policy"]), enabled


def _assignment_present() -> dict[str, Any]:
    current = rules.assignment_rules()
    return {"policy": current.policy.value, "enabled": current.enabled}


@extend_schema(tags=["settings"])
class AssignmentSettingsView(APIView):
    @extend_schema(responses={200: AssignmentSettingsSerializer})
    def get(self, request: Request) -> Response:
        _require_admin(request)
        return Response(_assignment_present())

    @extend_schema(
        request=AssignmentSettingsSerializer, responses={200: AssignmentSettingsSerializer}
    )
    def put(self, request: Request) -> Response:
        """Choose the automatic-assignment policy, or switch automatic assignment off."""
        _require_admin(request)
        policy, enabled = parse_assignment_settings(request.data)
        AssignmentSetting.objects.update_or_create(
            id=SINGLETON,
            defaults={
                "policy": policy.value,
                "enabled": enabled,
                "updated_by": str(request.user.pk),
            },
        )
        return Response(_assignment_present())
