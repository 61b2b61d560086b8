"""Admin commands: replace the automation settings (SLA rules, business calendar,
assignment policy, rate limits). Each change is recorded as an admin change event with the
settings before and after (``command_api.admin_audit``).

Only admins may use them (403 ``forbidden`` otherwise). Input is validated strictly by the
domain's own parsers: anything wrong is a 400 ``{error, detail, fields}`` naming the field. A
change applies to the next decision of the assignment manager and the next SLA check (which
also refreshes every open ticket's deadlines).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from command_api.admin_audit import record
from domain.sla import BusinessCalendar
from infra.automation import rules
from infra.automation.api import (
    AssignmentSettingsSerializer,
    CalendarSerializer,
    SlaReminderSettingsSerializer,
    SlaSettingsSerializer,
    TicketIntakeSerializer,
    assignment_present,
    intake_present,
    json_object,
    parse_assignment_settings,
    parse_intake_settings,
    parse_sla_reminder_settings,
    parse_sla_settings,
    require_admin,
    sla_present,
    sla_reminder_present,
)
from infra.automation.models import (
    SINGLETON,
    AssignmentSetting,
    BusinessCalendarSetting,
    SlaPolicySetting,
    SlaReminderSetting,
    TicketIntakeSetting,
)
from infra.ratelimit import policy as rate_limits
from infra.ratelimit.api import RateLimitsSerializer


def replace_settings(
    request: Request,
    action: str,
    target: str,
    present: Callable[[], dict[str, Any]],
    store: Callable[[str], object],
) -> Response:
    """One settings change: ``store`` (given the admin's id) between two reads of the
    presented settings, in one transaction with the admin change event that records them."""
    with transaction.atomic():
        before = present()
        store(str(request.user.pk))
        after = present()
        record(request, action, target, before, after)
    return Response(after)


def singleton(model: type[Any], **values: object) -> Callable[[str], object]:
    """The store of a one-row settings table: ``values``, and who changed them."""
    return lambda by: model.objects.update_or_create(
        id=SINGLETON, defaults={**values, "updated_by": by}
    )


@extend_schema(tags=["settings"])
class SlaSettingsEditView(APIView):
    @extend_schema(request=SlaSettingsSerializer, responses={200: SlaSettingsSerializer})
    def put(self, request: Request) -> Response:
        """Replace the SLA rules: business minutes per priority for both targets."""
        require_admin(request)
        policies = parse_sla_settings(request.data)

        def store(by: str) -> None:
            for policy in policies:
                SlaPolicySetting.objects.update_or_create(
                    priority=policy.priority.value,
                    defaults={
                        "first_response_minutes": int(policy.first_response.total_seconds() // 60),
                        "resolution_minutes": int(policy.resolution.total_seconds() // 60),
                        "updated_by": by,
                    },
                )

        return replace_settings(request, "settings.sla", "settings:sla", sla_present, store)


def _calendar_present() -> dict[str, Any]:
    return BusinessCalendar.from_json(rules.calendar_json()).to_json()


@extend_schema(tags=["settings"])
class CalendarSettingsEditView(APIView):
    @extend_schema(request=CalendarSerializer, responses={200: CalendarSerializer})
    def put(self, request: Request) -> Response:
        """Replace the business calendar that SLA deadlines are counted in."""
        require_admin(request)
        stored = BusinessCalendar.from_json(json_object(request.data)).to_json()
        return replace_settings(
            request,
            "settings.calendar",
            "settings:calendar",
            _calendar_present,
            singleton(
                BusinessCalendarSetting,
                time_zone=stored["time_zone"],
                weekly_hours=stored["weekly_hours"],
                holidays=stored["holidays"],
            ),
        )


@extend_schema(tags=["settings"])
class AssignmentSettingsEditView(APIView):
    @extend_schema(
        request=AssignmentSettingsSerializer, responses={200: AssignmentSettingsSerializer}
    )
    def put(self, request: Request) -> Response:
        """Choose the automatic-assignment policy, or switch automatic assignment off."""
        require_admin(request)
        policy, enabled = parse_assignment_settings(request.data)
        return replace_settings(
            request,
            "settings.assignment",
            "settings:assignment",
            assignment_present,
            singleton(AssignmentSetting, policy=policy.value, enabled=enabled),
        )


@extend_schema(tags=["settings"])
class RateLimitSettingsEditView(APIView):
    @extend_schema(request=RateLimitsSerializer, responses={200: RateLimitsSerializer})
    def put(self, request: Request) -> Response:
        """Replace the rate limits: every scope with per_user, per_ip (0: no limit) and
        window_seconds. Every server process applies them within a few seconds."""
        require_admin(request)
        parsed = rate_limits.parse(request.data)
        return replace_settings(
            request,
            "settings.rate_limits",
            "settings:rate_limits",
            rate_limits.present,
            lambda by: rate_limits.store(parsed, by=by),
        )


@extend_schema(tags=["settings"])
class TicketIntakeSettingsEditView(APIView):
    @extend_schema(request=TicketIntakeSerializer, responses={200: TicketIntakeSerializer})
    def put(self, request: Request) -> Response:
        """Whether customers may choose the priority of the tickets they open (tags: never)."""
        require_admin(request)
        allowed = parse_intake_settings(request.data)
        return replace_settings(
            request,
            "settings.tickets",
            "settings:tickets",
            intake_present,
            singleton(TicketIntakeSetting, customers_set_priority=allowed),
        )


@extend_schema(tags=["settings"])
class SlaReminderSettingsEditView(APIView):
    @extend_schema(
        request=SlaReminderSettingsSerializer, responses={200: SlaReminderSettingsSerializer}
    )
    def put(self, request: Request) -> Response:
        """How many minutes before a first-response or resolution deadline the assigned agent
        is reminded (0: no reminders). Applies from the next SLA check."""
        require_admin(request)
        minutes = parse_sla_reminder_settings(request.data)
        return replace_settings(
            request,
            "settings.sla_reminders",
            "settings:sla-reminders",
            sla_reminder_present,
            singleton(SlaReminderSetting, minutes_before=minutes),
        )
