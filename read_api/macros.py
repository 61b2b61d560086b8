"""Macros as staff are offered them, and one macro filled in for one ticket.

An agent sees the shared macros and their own; an admin too (another's personal macro is
nobody else's business). The placeholders are filled from the read models and the user
table here, so the web app shows the reply exactly as it will be sent, and the agent can edit
it before sending.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from domain.lifecycle import Status
from domain.placeholders import fill_placeholders
from infra.auth.models import User
from infra.postgres.models import MacroRecord, TicketRecord
from read_api.consistency import ConsistentReadMixin
from read_api.views import READ_MODELS, is_staff, user_id

STATUSES = [s.value for s in Status]


class MacroSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    name = serializers.CharField()
    body = serializers.CharField(help_text="With its placeholders, as written.")
    shared = serializers.BooleanField()
    mine = serializers.BooleanField(help_text="The caller owns it (a personal macro of theirs).")
    editable = serializers.BooleanField(help_text="The caller may change or delete it.")
    status = serializers.ChoiceField(choices=STATUSES, allow_null=True)
    add_tags = serializers.ListField(child=serializers.CharField())
    assign_to = serializers.CharField(allow_null=True)
    version = serializers.IntegerField()


class FilledMacroSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    name = serializers.CharField()
    body = serializers.CharField(help_text="The reply with the ticket's values filled in.")
    status = serializers.ChoiceField(choices=STATUSES, allow_null=True)
    add_tags = serializers.ListField(child=serializers.CharField())
    assign_to = serializers.CharField(
        allow_null=True, help_text='The agent\'s user id ("me" already resolved), or null.'
    )
    assign_to_name = serializers.CharField(allow_null=True)


def _staff(request: Request) -> None:
    if not is_staff(request):
        raise PermissionDenied("Only agents and admins use macros.")


def visible_macros(request: Request) -> Any:
    return MacroRecord.objects.filter(Q(shared=True) | Q(owner_id=user_id(request)))


def _row(macro: MacroRecord, request: Request) -> dict[str, Any]:
    mine = not macro.shared and macro.owner_id == user_id(request)
    admin = getattr(request.user, "role", None) == User.Role.ADMIN
    return {
        "id": macro.id,
        "name": macro.name,
        "body": macro.body,
        "shared": macro.shared,
        "mine": mine,
        "editable": mine or (macro.shared and admin),
        "status": macro.status,
        "add_tags": list(macro.add_tags),
        "assign_to": macro.assign_to,
        "version": macro.version,
    }


@extend_schema(tags=["macros"])
class MacroListView(ConsistentReadMixin, APIView):
    projection = READ_MODELS

    @extend_schema(
        parameters=[OpenApiParameter("after", OpenApiTypes.INT)],
        responses={200: MacroSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        """The macros the caller may apply: shared ones first, then their own, by name."""
        _staff(request)
        self.consistent(request)
        macros = visible_macros(request).order_by("-shared", "name", "id")
        rows = [_row(m, request) for m in macros]
        return self.mark(Response(MacroSerializer(rows, many=True).data))


@extend_schema(tags=["macros"])
class FilledMacroView(ConsistentReadMixin, APIView):
    projection = READ_MODELS

    @extend_schema(
        parameters=[
            OpenApiParameter("ticket", OpenApiTypes.UUID, required=True),
            OpenApiParameter("after", OpenApiTypes.INT),
        ],
        responses={200: FilledMacroSerializer},
    )
    def get(self, request: Request, macro_id: str) -> Response:
        """The macro filled in for one ticket: the reply to put in the composer and the
        changes to ask for when it is sent."""
        _staff(request)
        self.consistent(request)  # first: a bad ``after`` is named whatever else is wrong
        raw_ticket = request.query_params.get("ticket", "")
        try:
            ticket_id = UUID(raw_ticket)
        except ValueError:
            raise ValidationError({"ticket": ["Give the ticket's id."]}) from None
        try:
            mid = UUID(macro_id)
        except ValueError:
            raise NotFound("No such macro.") from None
        macro = visible_macros(request).filter(id=mid).first()
        if macro is None:
            raise NotFound("No such macro.")
        ticket = TicketRecord.objects.filter(id=ticket_id).first()
        if ticket is None:
            raise ValidationError({"ticket": ["No such ticket."]})
        me: User = request.user  # type: ignore[assignment]
        customer = _user(ticket.customer_id)
        assignee = str(me.pk) if macro.assign_to == "me" else macro.assign_to
        agent = me if assignee == str(me.pk) else _user(assignee)
        values = {
            "customer.name": customer.display_name if customer else "",
            "customer.email": customer.email if customer else "",
            "ticket.subject": ticket.subject,
            "ticket.status": Status(ticket.status).label,
            "agent.name": me.display_name,
        }
        data = {
            "id": macro.id,
            "name": macro.name,
            "body": fill_placeholders(macro.body, values),
            "status": macro.status,
            "add_tags": list(macro.add_tags),
            "assign_to": assignee,
            "assign_to_name": agent.display_name if agent and assignee else None,
        }
        return self.mark(Response(FilledMacroSerializer(data).data))


def _user(pk: str | None) -> User | None:
    if not pk or not (pk.isascii() and pk.isdigit()) or len(pk) > 18:
        return None
    return User.objects.filter(pk=int(pk)).first()
