"""Agent settings that automatic assignment decides on: working hours, capacity, skills.

``PUT /api/agents/{user_id}/working-hours``: the agent itself (``me``) or an admin sets the
weekly hours, in a time zone, inside which the agent gets tickets automatically (``null``:
any time). ``PATCH /api/agents/{user_id}/profile``: an admin changes capacity, skills and
languages. Each is a command on the ``Agent`` aggregate and returns ``{id, version,
position}``; an agent that never registered is registered first.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from command_api.admin_audit import record
from command_api.application import CommandResult, get_application
from command_api.serializers import CommandResultSerializer
from command_api.views import actor_of, result
from domain.agent import CAPACITY_MAX, Agent
from domain.errors import NotFoundError, PermissionDeniedError
from domain.lifecycle import Role
from domain.numbers import parse_natural
from domain.ticket import TAG_MAX, TAGS_MAX
from infra.api import StrictCharField, StrictIntegerField, StrictSerializer
from infra.auth.models import User


class WorkingHoursSerializer(StrictSerializer):
    working_hours = serializers.JSONField(
        allow_null=True,
        help_text='{"time_zone": "Europe/Berlin", "weekly_hours": {"mon": [["09:00", "17:00"]], '
        "...}}, or null: available at any time.",
    )


class AgentProfileSerializer(StrictSerializer):
    capacity = StrictIntegerField(min_value=0, max_value=CAPACITY_MAX, required=False)
    skills = serializers.ListField(
        child=StrictCharField(max_length=TAG_MAX), max_length=TAGS_MAX, required=False
    )
    languages = serializers.ListField(
        child=StrictCharField(max_length=TAG_MAX), max_length=TAGS_MAX, required=False
    )


def _agent_user(request: Request, user_id: str, *, self_allowed: bool) -> User:
    actor = actor_of(request)
    if user_id == "me":
        user_id = actor.id
    if actor.role is not Role.ADMIN and not (self_allowed and user_id == actor.id):
        raise PermissionDeniedError(
            "Only admins (or the agent, for its own working hours) change this."
        )
    pk = parse_natural(user_id)
    user = User.objects.filter(
        pk=-1 if pk is None else pk,
        role__in=[User.Role.AGENT, User.Role.ADMIN],
        is_active=True,
    ).first()
    if user is None:
        raise NotFoundError("No such agent.", id=user_id)
    return user


def _registered(user: User) -> str:
    """The agent's user id, registering its ``Agent`` aggregate if it has none yet."""
    app = get_application()
    try:
        app.get_agent(str(user.pk))
    except NotFoundError:
        app.register_agent(user_id=str(user.pk), name=user.display_name)
    return str(user.pk)


class AgentWorkingHoursView(APIView):
    @extend_schema(
        request=WorkingHoursSerializer,
        responses={200: CommandResultSerializer},
        tags=["agents"],
    )
    def put(self, request: Request, user_id: str) -> Response:
        user = _agent_user(request, user_id, self_allowed=True)
        data = WorkingHoursSerializer.validated(request.data)
        uid = _registered(user)
        app = get_application()
        before = app.get_agent(uid).working_hours
        res = app.set_agent_working_hours(uid, data["working_hours"])
        if res.position is not None and actor_of(request).role is Role.ADMIN:
            # Agent events name no actor: an admin's change is recorded with who and before.
            after = app.get_agent(uid).working_hours
            record(request, "agent.working_hours_changed", f"user:{uid}", before, after)
        return result(res)


class AgentProfileView(APIView):
    @extend_schema(
        request=AgentProfileSerializer,
        responses={200: CommandResultSerializer},
        tags=["agents"],
    )
    def patch(self, request: Request, user_id: str) -> Response:
        user = _agent_user(request, user_id, self_allowed=False)
        data = AgentProfileSerializer.validated(request.data)
        if not data:
            raise ValidationError({"non_field_errors": ["Nothing to change."]})
        uid = _registered(user)
        app = get_application()
        before = _profile(app.get_agent(uid))
        results: list[CommandResult] = []
        if "capacity" in data:
            results.append(app.set_agent_capacity(uid, data["capacity"]))
        if "skills" in data or "languages" in data:
            agent = app.get_agent(uid)
            results.append(
                app.set_agent_skills(
                    uid,
                    skills=data.get("skills", agent.skills),
                    languages=data.get("languages", agent.languages),
                )
            )
        last = results[-1]
        position = max((r.position for r in results if r.position is not None), default=None)
        if position is not None:
            record(request, "agent.profile_changed", f"user:{uid}", before,
                   _profile(app.get_agent(uid)))  # fmt: skip
        return result(CommandResult(last.id, last.version, position))


def _profile(agent: Agent) -> dict[str, object]:
    return {"capacity": agent.capacity, "skills": agent.skills, "languages": agent.languages}
