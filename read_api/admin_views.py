"""Admin console queries: agents with their assignment profile and teams, teams with their
members, a customer's profile, projector status and lag, and rebuilds with their progress.

Only admins may use them (403 ``forbidden`` for agents and customers). Teams and the
agents' working hours are read from the assignment manager's own tables (what routing
decides on); ``?after=<position>`` waits until it has applied a command's position.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from domain.numbers import parse_natural
from infra.api import query_boolean
from infra.auth.models import User
from infra.auth.staff import StaffUserSerializer, present_user
from infra.postgres.models import (
    AgentRecord,
    AssignAgentRecord,
    AssignTeamRecord,
    ProjectionRebuild,
)
from read_api.consistency import ConsistentReadMixin
from read_api.pagination import StrictCursorPagination
from read_api.views import ASSIGNMENT, customer_directory

STAFF = (User.Role.AGENT, User.Role.ADMIN)


def require_admin(request: Request) -> None:
    if getattr(request.user, "role", None) != User.Role.ADMIN:
        raise PermissionDenied("Only admins use the admin console.")


class ById(StrictCursorPagination):
    page_size = 50
    max_page_size = 200
    ordering = "id"


class NewestFirst(StrictCursorPagination):
    page_size = 20
    max_page_size = 100
    ordering = "-started_at"


# ------------------------------------------------------------------------------ agents
class TeamRefSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    name = serializers.CharField()


class AdminAgentSerializer(StaffUserSerializer):
    availability = serializers.CharField(allow_null=True)
    capacity = serializers.IntegerField(allow_null=True)
    skills = serializers.ListField(child=serializers.CharField())
    languages = serializers.ListField(child=serializers.CharField())
    working_hours = serializers.JSONField(allow_null=True)
    teams = TeamRefSerializer(many=True)


class AdminAgentPageSerializer(serializers.Serializer[Any]):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = AdminAgentSerializer(many=True)


@extend_schema(tags=["admin"])
class AdminAgentListView(ConsistentReadMixin, APIView):
    projection = ASSIGNMENT

    @extend_schema(
        parameters=[
            OpenApiParameter("role", str, enum=["agent", "admin"]),
            OpenApiParameter("active", OpenApiTypes.BOOL),
            OpenApiParameter("cursor", str),
            OpenApiParameter("page_size", OpenApiTypes.INT, description="1 to 200 (50)."),
            OpenApiParameter("after", OpenApiTypes.INT),
        ],
        responses={200: AdminAgentPageSerializer},
    )
    def get(self, request: Request) -> Response:
        """Agents and admins (invited ones included) with what assignment knows of each."""
        require_admin(request)
        users = User.objects.filter(role__in=STAFF)
        role = request.query_params.get("role")
        if role:
            if role not in STAFF:
                raise ValidationError({"role": ["agent or admin."]})
            users = users.filter(role=role)
        active = request.query_params.get("active")
        if active:
            try:
                users = users.filter(is_active=query_boolean(active))
            except ValueError:
                raise ValidationError({"active": ["true or false."]}) from None
        self.consistent(request)
        paginator = ById()
        page = paginator.paginate_queryset(users, request, view=self) or []
        ids = [str(u.pk) for u in page]
        facts = {a.user_id: a for a in AgentRecord.objects.filter(user_id__in=ids)}
        hours = dict(
            AssignAgentRecord.objects.filter(user_id__in=ids).values_list(
                "user_id", "working_hours"
            )
        )
        teams: dict[str, list[dict[str, Any]]] = {}
        for team in AssignTeamRecord.objects.filter(members__overlap=ids, archived=False):
            for member in team.members:
                teams.setdefault(member, []).append({"id": team.id, "name": team.name})
        rows = []
        for user in page:
            uid = str(user.pk)
            agent = facts.get(uid)
            rows.append(
                {
                    **present_user(user),
                    "availability": agent.availability if agent else None,
                    "capacity": agent.capacity if agent else None,
                    "skills": agent.skills if agent else [],
                    "languages": agent.languages if agent else [],
                    "working_hours": hours.get(uid),
                    "teams": sorted(teams.get(uid, []), key=lambda t: t["name"]),
                }
            )
        response = paginator.get_paginated_response(AdminAgentSerializer(rows, many=True).data)
        return self.mark(response)


# ------------------------------------------------------------------------------ teams
class TeamMemberRefSerializer(serializers.Serializer[Any]):
    id = serializers.CharField()
    name = serializers.CharField()


class AdminTeamSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    name = serializers.CharField()
    archived = serializers.BooleanField()
    version = serializers.IntegerField()
    members = TeamMemberRefSerializer(many=True)


class AdminTeamPageSerializer(serializers.Serializer[Any]):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = AdminTeamSerializer(many=True)


@extend_schema(tags=["admin"])
class AdminTeamListView(ConsistentReadMixin, APIView):
    projection = ASSIGNMENT

    @extend_schema(
        parameters=[
            OpenApiParameter("archived", OpenApiTypes.BOOL, description="Default: all."),
            OpenApiParameter("cursor", str),
            OpenApiParameter("page_size", OpenApiTypes.INT, description="1 to 200 (50)."),
            OpenApiParameter("after", OpenApiTypes.INT),
        ],
        responses={200: AdminTeamPageSerializer},
    )
    def get(self, request: Request) -> Response:
        """Teams with their members (as the assignment manager routes by them)."""
        require_admin(request)
        teams = AssignTeamRecord.objects.all()
        archived = request.query_params.get("archived")
        if archived:
            try:
                teams = teams.filter(archived=query_boolean(archived))
            except ValueError:
                raise ValidationError({"archived": ["true or false."]}) from None
        self.consistent(request)
        paginator = ById()
        page = paginator.paginate_queryset(teams, request, view=self) or []
        member_ids = {m for t in page for m in t.members}
        names = {
            str(u.pk): u.display_name
            for u in User.objects.filter(pk__in=[int(m) for m in member_ids if m.isdigit()])
        }
        rows = [
            {
                "id": t.id,
                "name": t.name,
                "archived": t.archived,
                "version": t.version,
                "members": [{"id": m, "name": names.get(m, m)} for m in t.members],
            }
            for t in page
        ]
        response = paginator.get_paginated_response(AdminTeamSerializer(rows, many=True).data)
        return self.mark(response)


# ------------------------------------------------------------------------------ customers
class CustomerProfileSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    email = serializers.EmailField()
    company = serializers.CharField()
    phone = serializers.CharField()
    is_active = serializers.BooleanField()
    social_provider = serializers.CharField()
    date_joined = serializers.DateTimeField()
    last_seen = serializers.DateTimeField(allow_null=True)
    open_tickets = serializers.IntegerField()
    total_tickets = serializers.IntegerField()


@extend_schema(tags=["admin"])
class CustomerProfileView(APIView):
    @extend_schema(responses={200: CustomerProfileSerializer})
    def get(self, request: Request, customer_id: str) -> Response:
        """One customer's profile with ticket counts; their tickets:
        ``GET /api/tickets?customer={id}``."""
        require_admin(request)
        pk = parse_natural(customer_id)
        user = customer_directory().filter(pk=-1 if pk is None else pk).first()
        if user is None:
            raise NotFound("No such customer.")
        row = {
            "id": user.pk,
            "name": user.name or user.email,  # type: ignore[attr-defined]
            "email": user.email,
            "company": user.company,  # type: ignore[attr-defined]
            "phone": user.phone,  # type: ignore[attr-defined]
            "is_active": user.is_active,
            "social_provider": user.social_provider,
            "date_joined": user.date_joined,
            "last_seen": user.last_seen,
            "open_tickets": user.open_tickets,  # type: ignore[attr-defined]
            "total_tickets": user.total_tickets,  # type: ignore[attr-defined]
        }
        return Response(CustomerProfileSerializer(row).data)


# ------------------------------------------------------------------------------ projections
ProjectorStatus = Callable[[], list[dict[str, Any]]]
_status: list[ProjectorStatus] = []


def provide_projector_status(status: ProjectorStatus) -> None:
    """The composition root's account of every projector (``processes.rebuilds.status``)."""
    _status[:] = [status]


class ProjectorStatusSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    source = serializers.CharField(help_text="log or kafka; ? when unreachable")  # type: ignore[assignment]
    position = serializers.IntegerField(allow_null=True)
    head = serializers.IntegerField()
    lag = serializers.IntegerField(allow_null=True, help_text="Events not applied yet.")
    where = serializers.CharField()
    rebuildable = serializers.BooleanField()


class RebuildSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    projector = serializers.CharField()
    state = serializers.ChoiceField(choices=ProjectionRebuild.State.values)
    done = serializers.IntegerField()
    total = serializers.IntegerField()
    rate = serializers.FloatField(help_text="events per second")
    position = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    started_by = serializers.CharField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class RebuildPageSerializer(serializers.Serializer[Any]):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = RebuildSerializer(many=True)


@extend_schema(tags=["admin"])
class ProjectorStatusView(APIView):
    @extend_schema(responses={200: ProjectorStatusSerializer(many=True)})
    def get(self, request: Request) -> Response:
        """Every projector: its position, the log's head and the lag between them."""
        require_admin(request)
        rows = _status[0]() if _status else []
        return Response(ProjectorStatusSerializer(rows, many=True).data)


@extend_schema(tags=["admin"])
class RebuildListView(APIView):
    @extend_schema(
        operation_id="admin_projections_rebuilds_list",
        parameters=[
            OpenApiParameter("cursor", str),
            OpenApiParameter("page_size", OpenApiTypes.INT, description="1 to 100 (20)."),
        ],
        responses={200: RebuildPageSerializer},
    )
    def get(self, request: Request) -> Response:
        """Rebuilds started from the console, newest first."""
        require_admin(request)
        paginator = NewestFirst()
        page = paginator.paginate_queryset(ProjectionRebuild.objects.all(), request, view=self)
        return paginator.get_paginated_response(RebuildSerializer(page or [], many=True).data)


@extend_schema(tags=["admin"])
class RebuildView(APIView):
    @extend_schema(responses={200: RebuildSerializer})
    def get(self, request: Request, rebuild_id: str) -> Response:
        """A rebuild's progress: poll it until ``state`` is ``done`` or ``failed``."""
        require_admin(request)
        try:
            key = UUID(rebuild_id)
        except ValueError:
            raise NotFound("No such rebuild.") from None
        job = ProjectionRebuild.objects.filter(id=key).first()
        if job is None:
            raise NotFound("No such rebuild.")
        return Response(RebuildSerializer(job).data)
