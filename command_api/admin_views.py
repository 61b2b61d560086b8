"""Admin console commands: invite agents, deactivate and reactivate them, change their
role; create, rename, archive teams and change their members; route a ticket to a team;
start a projection rebuild; and the audit browser over the whole event store.

Only admins may use them (403 ``forbidden`` for agents and customers, 401 without a
session), except routing a ticket to a team, which agents may do too. Every change to a
table (users, roles) is also recorded as an ``AdminChange`` event (``admin_audit``); team
changes are events of the ``Team`` aggregate themselves.
"""

from __future__ import annotations

import contextlib
import csv
import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import transaction
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from command_api import admin_audit
from command_api.application import get_application
from command_api.audit import AuditFilter, AuditPage, audit_page, audit_rows, parse_filter
from command_api.serializers import CommandResultSerializer
from command_api.views import actor_of, result, ticket_uuid
from domain.agent import Availability, agent_id_for_user
from domain.errors import NotFoundError
from domain.lifecycle import Role
from domain.numbers import parse_natural
from domain.team import NAME_MAX
from infra.api import StrictBooleanField, StrictCharField, StrictSerializer
from infra.auth.models import AgentProfile, AuthSession, User
from infra.auth.staff import StaffUserSerializer, present_user

STAFF = (User.Role.AGENT, User.Role.ADMIN)
STAFF_ROLES = [(r.value, r.label) for r in STAFF]

log = logging.getLogger(__name__)


def require_admin(request: Request) -> None:
    if getattr(request.user, "role", None) != User.Role.ADMIN:
        raise PermissionDenied("Only admins use the admin console.")


class ConflictError(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "This conflicts with the current state."


class RebuildRunningError(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "rebuild_running"
    default_detail = "A rebuild of this projector is running already."


# ------------------------------------------------------------------------------ agents
class InviteSerializer(StrictSerializer):
    email = serializers.EmailField(max_length=150)  # it is the username too
    name = StrictCharField(max_length=150, required=False, allow_blank=True, default="")
    role = serializers.ChoiceField(choices=STAFF_ROLES, default="agent")


class RoleSerializer(StrictSerializer):
    role = serializers.ChoiceField(choices=STAFF_ROLES)


def _snapshot(user: User) -> dict[str, Any]:
    return {"email": user.email, "role": user.role, "is_active": user.is_active}


def staff_user(user_id: str, *, for_update: bool = False) -> User:
    pk = parse_natural(user_id)
    users = User.objects.select_for_update() if for_update else User.objects
    user = users.filter(pk=-1 if pk is None else pk, role__in=STAFF).first()
    if user is None:
        raise NotFoundError("No such agent.", id=user_id)
    return user


@extend_schema(tags=["admin"])
class InviteAgentView(APIView):
    @extend_schema(request=InviteSerializer, responses={201: StaffUserSerializer})
    def post(self, request: Request) -> Response:
        """Invite an agent or admin by e-mail: the user exists at once with that role (it
        signs in with a social provider whose verified e-mail matches). 409 if the e-mail
        belongs to a user already."""
        require_admin(request)
        data = InviteSerializer.validated(request.data)
        email = User.objects.normalize_email(data["email"]).lower()
        first, _, last = " ".join(data["name"].split()).partition(" ")
        with transaction.atomic():
            if User.objects.filter(email__iexact=email).exists():
                raise ConflictError("A user with this e-mail exists already.")
            inviter: User = request.user  # type: ignore[assignment]
            user = User(
                username=email,
                email=email,
                role=data["role"],
                first_name=first[:150],
                last_name=last[:150],
                invited_at=timezone.now(),
                invited_by=inviter,
            )
            user.set_unusable_password()
            user.save()
            AgentProfile.objects.create(user=user, agent_id=agent_id_for_user(str(user.pk)))
            admin_audit.record(
                request,
                "agent.invited",
                f"user:{user.pk}",
                None,
                {**_snapshot(user), "name": user.display_name},
            )
        get_application().register_agent(user_id=str(user.pk), name=user.display_name)
        return Response(present_user(user), status=status.HTTP_201_CREATED)


def _set_active(request: Request, user_id: str, active: bool) -> Response:
    require_admin(request)
    actor = actor_of(request)
    with transaction.atomic():
        user = staff_user(user_id, for_update=True)
        if not active and str(user.pk) == actor.id:
            raise ConflictError("Admins cannot deactivate themselves.")
        if user.is_active != active:
            before = _snapshot(user)
            user.is_active = active
            user.save(update_fields=["is_active"])
            if not active:
                # Every session ends now: its next request (and refresh) is refused.
                AuthSession.objects.filter(user=user, revoked_at__isnull=True).update(
                    revoked_at=timezone.now(), revoked_reason="deactivated"
                )
            admin_audit.record(
                request,
                "agent.reactivated" if active else "agent.deactivated",
                f"user:{user.pk}",
                before,
                _snapshot(user),
            )
    if not active:
        for end in _end_sockets:  # its open WebSockets close now, in every process
            try:
                end(str(user.pk))
            except Exception:  # the layer away: each socket's session re-check ends it
                log.warning("sockets of user %s not closed at once", user.pk, exc_info=True)
        # Offline: the assignment manager hands the agent's working tickets to others.
        with contextlib.suppress(NotFoundError):  # never registered: has no tickets
            get_application().set_agent_availability(str(user.pk), Availability.OFFLINE.value)
    return Response(present_user(user))


@extend_schema(tags=["admin"])
class DeactivateAgentView(APIView):
    @extend_schema(request=None, responses={200: StaffUserSerializer})
    def post(self, request: Request, user_id: str) -> Response:
        """Deactivate: every session of the user ends at once, and it goes offline."""
        return _set_active(request, user_id, False)


@extend_schema(tags=["admin"])
class ReactivateAgentView(APIView):
    @extend_schema(request=None, responses={200: StaffUserSerializer})
    def post(self, request: Request, user_id: str) -> Response:
        """Reactivate: the user may sign in again."""
        return _set_active(request, user_id, True)


@extend_schema(tags=["admin"])
class AgentRoleView(APIView):
    @extend_schema(request=RoleSerializer, responses={200: StaffUserSerializer})
    def put(self, request: Request, user_id: str) -> Response:
        """Make the user an agent or an admin (admins cannot demote themselves)."""
        require_admin(request)
        data = RoleSerializer.validated(request.data)
        with transaction.atomic():
            user = staff_user(user_id, for_update=True)
            if str(user.pk) == actor_of(request).id and data["role"] != User.Role.ADMIN:
                raise ConflictError("Admins cannot demote themselves.")
            if user.role != data["role"]:
                before = _snapshot(user)
                user.role = data["role"]
                user.save(update_fields=["role"])
                admin_audit.record(
                    request, "agent.role_changed", f"user:{user.pk}", before, _snapshot(user)
                )
        return Response(present_user(user))


# ------------------------------------------------------------------------------ teams
class CreateTeamSerializer(StrictSerializer):
    name = StrictCharField(max_length=NAME_MAX * 2)


class EditTeamSerializer(StrictSerializer):
    name = StrictCharField(max_length=NAME_MAX * 2, required=False)
    archived = StrictBooleanField(required=False)


class TeamMemberSerializer(StrictSerializer):
    user_id = StrictCharField(max_length=32)


class TicketTeamSerializer(StrictSerializer):
    team_id = serializers.UUIDField(allow_null=True)


def team_uuid(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise NotFoundError("No such team.", id=value) from None


@extend_schema(tags=["admin"])
class CreateTeamView(APIView):
    @extend_schema(request=CreateTeamSerializer, responses={201: CommandResultSerializer})
    def post(self, request: Request) -> Response:
        """Create a team; ``id`` in the answer is the new team's."""
        require_admin(request)
        data = CreateTeamSerializer.validated(request.data)
        return result(
            get_application().create_team(actor_of(request), name=data["name"]),
            status.HTTP_201_CREATED,
        )


@extend_schema(tags=["admin"])
class EditTeamView(APIView):
    @extend_schema(request=EditTeamSerializer, responses={200: CommandResultSerializer})
    def patch(self, request: Request, team_id: str) -> Response:
        """Rename a team, archive it (``archived: true``) or restore it."""
        require_admin(request)
        tid = team_uuid(team_id)
        data = EditTeamSerializer.validated(request.data)
        if not data:
            raise ValidationError({"non_field_errors": ["Nothing to change."]})
        app, actor = get_application(), actor_of(request)
        app.get_team(tid)  # 404 before anything is decided
        last = None
        if "name" in data:
            last = app.rename_team(tid, actor, name=data["name"])
        if "archived" in data:
            last = app.archive_team(tid, actor, archived=data["archived"])
        assert last is not None
        return result(last)


@extend_schema(tags=["admin"])
class TeamMembersView(APIView):
    @extend_schema(request=TeamMemberSerializer, responses={200: CommandResultSerializer})
    def post(self, request: Request, team_id: str) -> Response:
        """Add an active agent or admin to the team."""
        require_admin(request)
        tid = team_uuid(team_id)
        data = TeamMemberSerializer.validated(request.data)
        pk = parse_natural(data["user_id"])
        if not User.objects.filter(pk=-1 if pk is None else pk, role__in=STAFF).exists():
            raise ValidationError({"user_id": ["No such agent."]})
        return result(get_application().add_team_member(tid, actor_of(request), user_id=str(pk)))


@extend_schema(tags=["admin"])
class TeamMemberView(APIView):
    @extend_schema(request=None, responses={200: CommandResultSerializer})
    def delete(self, request: Request, team_id: str, user_id: str) -> Response:
        """Remove a member from the team (nothing happens if it is not one)."""
        require_admin(request)
        return result(
            get_application().remove_team_member(
                team_uuid(team_id), actor_of(request), user_id=user_id
            )
        )


@extend_schema(tags=["tickets"])
class TicketTeamView(APIView):
    @extend_schema(request=TicketTeamSerializer, responses={200: CommandResultSerializer})
    def put(self, request: Request, ticket_id: str) -> Response:
        """Route the ticket to a team (agents and admins), or to none (``team_id: null``).
        Automatic assignment then picks among that team's members."""
        actor = actor_of(request)
        tid = ticket_uuid(ticket_id)
        if actor.role is Role.CUSTOMER:
            raise PermissionDenied("Only agents and admins route tickets to a team.")
        data = TicketTeamSerializer.validated(request.data)
        team_id = data["team_id"]
        if team_id is not None:
            try:
                get_application().get_team(team_id)
            except NotFoundError:
                raise ValidationError({"team_id": ["No such team."]}) from None
        return result(get_application().set_ticket_team(tid, actor, team_id=team_id))


_end_sockets: list[Callable[[str], None]] = []


def provide_socket_end(end: Callable[[str], None]) -> None:
    """The composition root's way to close every WebSocket of a user (deactivation)."""
    _end_sockets[:] = [end]


# ------------------------------------------------------------------------------ rebuilds
RebuildStarter = Callable[[str, str], UUID]
_start_rebuild: list[RebuildStarter] = []
_projectors: list[Callable[[], list[str]]] = []


def provide_rebuilds(start: RebuildStarter, projectors: Callable[[], list[str]]) -> None:
    """The composition root's way to start a rebuild (``processes.rebuilds``)."""
    _start_rebuild[:] = [start]
    _projectors[:] = [projectors]


class RebuildStartedSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    projector = serializers.CharField()
    state = serializers.CharField()


@extend_schema(tags=["admin"])
class RebuildProjectionView(APIView):
    @extend_schema(
        request=None,
        responses={202: RebuildStartedSerializer},
    )
    def post(self, request: Request, name: str) -> Response:
        """Rebuild a projector from the log beside its live tables, then swap them in (the
        admin's replay). Follow it at ``GET /api/admin/projections/rebuilds/{id}``. 409 if
        a rebuild of it is running already."""
        require_admin(request)
        if not _projectors or name not in _projectors[0]():
            raise NotFoundError("No such projector.", id=name)
        job = _start_rebuild[0](name, str(request.user.pk))
        admin_audit.record(
            request, "projection.rebuild_started", f"projector:{name}", None, {"job": str(job)}
        )
        return Response(
            {"id": str(job), "projector": name, "state": "running"},
            status=status.HTTP_202_ACCEPTED,
        )


# ------------------------------------------------------------------------------ audit
AUDIT_PARAMETERS = [
    OpenApiParameter("actor", str, description="Only events by this user id (or `automation`)."),
    OpenApiParameter(
        "type", str, description="Only these event types, comma-separated (`AgentAssigned`)."
    ),
    OpenApiParameter("ticket", OpenApiTypes.UUID, description="Only this ticket's events."),
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="From this time (inclusive)."),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="Before this time."),
]


class AuditActorSerializer(serializers.Serializer[Any]):
    id = serializers.CharField(allow_null=True, help_text="A user id, or `automation`.")
    role = serializers.CharField(allow_null=True)
    name = serializers.CharField(allow_null=True, help_text="The user's name (null: no user).")


class AuditEventSerializer(serializers.Serializer[Any]):
    position = serializers.IntegerField()
    time = serializers.DateTimeField()
    type = serializers.CharField()
    aggregate = serializers.CharField(help_text="ticket, agent, team, macro or admin_change")
    aggregate_id = serializers.UUIDField()
    version = serializers.IntegerField()
    actor = AuditActorSerializer()
    data = serializers.JSONField()  # type: ignore[assignment]


class AuditPageSerializer(serializers.Serializer[Any]):
    results = AuditEventSerializer(many=True)
    next_before = serializers.IntegerField(
        allow_null=True,
        help_text="Pass as `before` for the next (older) page; null: no older events.",
    )


@extend_schema(tags=["audit"])
class AuditView(APIView):
    @extend_schema(
        parameters=[
            *AUDIT_PARAMETERS,
            OpenApiParameter("before", OpenApiTypes.INT, description="Older than this position."),
            OpenApiParameter("page_size", OpenApiTypes.INT, description="1 to 200 (50)."),
        ],
        responses={200: AuditPageSerializer},
    )
    def get(self, request: Request) -> Response:
        """Every event in the store, newest first, filtered by actor, event type, ticket and
        time: ticket changes, agent and team changes, and every admin change with before
        and after."""
        require_admin(request)
        flt = parse_filter(request.query_params)
        before = _natural_param(request, "before", None)
        size = _natural_param(request, "page_size", 50)
        if not 1 <= size <= 200:
            raise ValidationError({"page_size": ["An integer from 1 to 200."]})
        page: AuditPage = audit_page(get_application(), flt, before=before, size=size)
        return Response({"results": page.rows, "next_before": page.next_before})


class CsvRenderer(BaseRenderer):
    """Lets ``Accept: text/csv`` through content negotiation; the view streams the body."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: Any = None, renderer_context: Any = None
    ) -> Any:
        return data


@extend_schema(tags=["audit"])
class AuditCsvView(APIView):
    renderer_classes = [JSONRenderer, CsvRenderer]

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # Never 406 or a 404 for ``?format=``: the answer is CSV, or a JSON error.
        return super().perform_content_negotiation(request, force=True)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        if isinstance(response, Response):  # an error: always the JSON error body
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = "application/json"
        return response

    @extend_schema(
        parameters=AUDIT_PARAMETERS,
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description="position,time,type,aggregate,..."
            )
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        """The same events as CSV, oldest first, streamed (all of them, not one page)."""
        require_admin(request)
        flt = parse_filter(request.query_params)
        rows = audit_rows(get_application(), flt)
        response = StreamingHttpResponse(_csv_lines(rows), content_type="text/csv; charset=utf-8")
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
        return response


class _Echo:
    def write(self, value: str) -> str:
        return value


CSV_COLUMNS = ["position", "time", "type", "aggregate", "aggregate_id", "version",
               "actor_id", "actor_role", "actor_name", "data"]  # fmt: skip


def _csv_lines(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    import json

    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for row in rows:
        yield writer.writerow(
            [
                row["position"],
                row["time"].isoformat(),
                row["type"],
                row["aggregate"],
                row["aggregate_id"],
                row["version"],
                row["actor"]["id"] or "",
                row["actor"]["role"] or "",
                row["actor"]["name"] or "",
                json.dumps(row["data"], sort_keys=True, default=str),
            ]
        )


def _natural_param(request: Request, name: str, default: int | None) -> Any:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    value = parse_natural(raw)
    if value is None:
        raise ValidationError({name: ["A natural number."]})
    return value


__all__ = ["AuditFilter"]
