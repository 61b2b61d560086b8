"""Macro (canned reply) commands: create, change and delete a macro.

Agents and admins only. A shared macro is created and changed by admins; a personal one only
by the agent who owns it (another agent's personal macro is not found). Each change is an
event of the ``Macro`` aggregate. Applying a macro to a ticket is not a command of its own:
the web app sends the reply and asks for each change through the ticket's commands.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from command_api.application import get_application
from command_api.serializers import CommandResultSerializer
from command_api.views import actor_of, result
from domain.errors import NotFoundError
from domain.lifecycle import Role, Status
from domain.macro import BODY_MAX, NAME_MAX, MacroContent
from domain.ticket import TAG_MAX, TAGS_MAX
from infra.api import StrictBooleanField, StrictCharField, StrictSerializer


class MacroContentSerializer(StrictSerializer):
    name = StrictCharField(max_length=NAME_MAX * 2)
    body = StrictCharField(
        max_length=BODY_MAX,
        help_text="The reply, with placeholders such as {{customer.name}}, {{ticket.subject}} "
        "and {{agent.name}} (see docs/api.md).",
    )
    status = serializers.ChoiceField(
        choices=[s.value for s in Status],
        allow_null=True,
        required=False,
        default=None,
        help_text="Move the ticket to this status when the reply is sent (null: no change).",
    )
    add_tags = serializers.ListField(
        child=StrictCharField(max_length=TAG_MAX),
        max_length=TAGS_MAX,
        required=False,
        default=list,
        help_text="Tags to add to the ticket.",
    )
    assign_to = StrictCharField(
        max_length=18,
        allow_null=True,
        required=False,
        default=None,
        help_text='Assign the ticket: "me" (whoever applies it) or an agent\'s user id.',
    )


class CreateMacroSerializer(MacroContentSerializer):
    shared = StrictBooleanField(
        default=False, help_text="Shared with all staff (admins only); else personal."
    )


class EditMacroSerializer(MacroContentSerializer):
    name = StrictCharField(max_length=NAME_MAX * 2, required=False)
    body = StrictCharField(max_length=BODY_MAX, required=False)
    status = serializers.ChoiceField(
        choices=[s.value for s in Status], allow_null=True, required=False
    )
    add_tags = serializers.ListField(
        child=StrictCharField(max_length=TAG_MAX), max_length=TAGS_MAX, required=False
    )
    assign_to = StrictCharField(max_length=18, allow_null=True, required=False)


def _content(given: dict[str, Any], current: dict[str, Any]) -> MacroContent:
    """The fields given, the others as they are now."""
    return MacroContent(
        name=given.get("name", current.get("name")),
        body=given.get("body", current.get("body")),
        status=given.get("status", current.get("status")),
        add_tags=given.get("add_tags", current.get("add_tags", [])),
        assign_to=given.get("assign_to", current.get("assign_to")),
    )


def _staff(request: Request) -> None:
    if actor_of(request).role not in (Role.AGENT, Role.ADMIN):
        raise PermissionDenied("Only agents and admins keep macros.")


def macro_uuid(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise NotFoundError("No such macro.", id=value) from None


@extend_schema(tags=["macros"])
class CreateMacroView(APIView):
    @extend_schema(request=CreateMacroSerializer, responses={201: CommandResultSerializer})
    def post(self, request: Request) -> Response:
        """Create a macro (``shared: true`` for admins); ``id`` in the answer is the new one's."""
        _staff(request)
        data = CreateMacroSerializer.validated(request.data)
        shared = data.pop("shared")
        return result(
            get_application().create_macro(
                actor_of(request), shared=shared, content=_content(data, data)
            ),
            status.HTTP_201_CREATED,
        )


@extend_schema(tags=["macros"])
class EditMacroView(APIView):
    @extend_schema(request=EditMacroSerializer, responses={200: CommandResultSerializer})
    def patch(self, request: Request, macro_id: str) -> Response:
        """Change a macro's fields (those given; the others stay)."""
        _staff(request)
        mid = macro_uuid(macro_id)
        data: dict[str, Any] = EditMacroSerializer.validated(request.data)
        if not data:
            raise ValidationError({"non_field_errors": ["Nothing to change."]})
        app, actor = get_application(), actor_of(request)
        current = app.get_macro(mid, actor).content
        return result(app.change_macro(mid, actor, _content(data, current)))


@extend_schema(tags=["macros"])
class DeleteMacroView(APIView):
    @extend_schema(request=None, responses={200: CommandResultSerializer})
    def delete(self, request: Request, macro_id: str) -> Response:
        """Delete a macro (it is no longer offered; its history stays)."""
        _staff(request)
        return result(get_application().delete_macro(macro_uuid(macro_id), actor_of(request)))
