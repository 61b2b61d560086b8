"""Admin queries: the automation settings in force (SLA rules, business calendar,
assignment policy) and the rate limits. Only admins may use them (403 ``forbidden`` otherwise)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

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
    require_admin,
    sla_present,
    sla_reminder_present,
)
from infra.ratelimit import policy as rate_limits
from infra.ratelimit.api import RateLimitsSerializer


@extend_schema(tags=["settings"])
class SlaSettingsView(APIView):
    @extend_schema(responses={200: SlaSettingsSerializer})
    def get(self, request: Request) -> Response:
        require_admin(request)
        return Response(sla_present())


@extend_schema(tags=["settings"])
class CalendarSettingsView(APIView):
    @extend_schema(responses={200: CalendarSerializer})
    def get(self, request: Request) -> Response:
        require_admin(request)
        return Response(BusinessCalendar.from_json(rules.calendar_json()).to_json())


@extend_schema(tags=["settings"])
class AssignmentSettingsView(APIView):
    @extend_schema(responses={200: AssignmentSettingsSerializer})
    def get(self, request: Request) -> Response:
        require_admin(request)
        return Response(assignment_present())


@extend_schema(tags=["settings"])
class RateLimitSettingsView(APIView):
    @extend_schema(responses={200: RateLimitsSerializer})
    def get(self, request: Request) -> Response:
        """The rate limits in force: per scope, requests per user and per IP address in a
        window of seconds (0: no limit)."""
        require_admin(request)
        return Response(rate_limits.present())


@extend_schema(tags=["settings"])
class TicketIntakeSettingsView(APIView):
    @extend_schema(responses={200: TicketIntakeSerializer})
    def get(self, request: Request) -> Response:
        require_admin(request)
        return Response(intake_present())


@extend_schema(tags=["settings"])
class SlaReminderSettingsView(APIView):
    @extend_schema(responses={200: SlaReminderSettingsSerializer})
    def get(self, request: Request) -> Response:
        """Minutes before an SLA deadline the assigned agent is reminded (0: never)."""
        require_admin(request)
        return Response(sla_reminder_present())
