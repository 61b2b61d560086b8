"""DRF command endpoints: parse, call one use case, return ``{id, version, position}``.

Also the audit trail, which is the event history itself: ``/history`` lists a ticket's
events and ``?as_of=`` rebuilds the ticket as it was at a time or version.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from uuid import UUID

from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from command_api import serializers as s
from command_api.application import Actor, CommandResult, get_application
from command_api.presenters import present_history, present_ticket
from domain.errors import NotFoundError, PermissionDeniedError
from domain.lifecycle import Role
from domain.numbers import parse_natural
from domain.ticket import Ticket
from infra.api import in_utc
from infra.auth.models import User
from infra.automation.api import check_customer_intake
from infra.ratelimit.throttles import MessageThrottle, TicketCreationThrottle

IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.INT,
    OpenApiParameter.HEADER,
    description="The ticket version the user saw. A public reply written against a version "
    "older than the newest public message gets 409 `stale_reply` with those messages.",
)
_ETAG = re.compile(r'^(?:W/)?"?(\d{1,12})"?$')


def actor_of(request: Request) -> Actor:
    user: User = request.user  # type: ignore[assignment]
    return Actor(id=str(user.pk), role=Role(user.role))


def seen_version(request: Request) -> int | None:
    raw = request.headers.get("If-Match")
    if raw is None:
        return None
    version = if_match_version(raw)
    if version is None:
        raise ValidationError({"If-Match": ["Send the ticket version you saw, e.g. If-Match: 7."]})
    return version


def if_match_version(raw: str) -> int | None:
    """The ticket version an ``If-Match`` header names (``7``, ``"7"`` or ``W/"7"``), or
    None if it names none."""
    match = _ETAG.match(raw.strip())
    return int(match.group(1)) if match else None


def ticket_uuid(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise NotFoundError("No such ticket.", id=value) from None


def result(
    res: CommandResult, code: int = status.HTTP_200_OK, *, role: Role | None = None
) -> Response:
    """The command's ``{id, version, position}``; pass the actor's ``role`` wherever a
    customer may have sent it (they get their ticket's public version, ``seen_by``)."""
    if role is not None:
        res = res.seen_by(role)
    return Response(res.as_dict(), status=code, headers={"ETag": f'"{res.version}"'})


def load_visible_ticket(request: Request, ticket_id: UUID, version: int | None = None) -> Ticket:
    """The ticket if this user may read it; a customer's foreign ticket is a 404."""
    ticket = get_application().get_ticket(ticket_id, version)
    actor = actor_of(request)
    if actor.role is Role.CUSTOMER and ticket.customer_id != actor.id:
        raise NotFoundError("No such ticket.", id=str(ticket_id))
    return ticket


class TicketsView(APIView):
    throttle_classes = [TicketCreationThrottle]

    @extend_schema(
        request=s.OpenTicketSerializer, responses={201: s.CommandResultSerializer}, tags=["tickets"]
    )
    def post(self, request: Request) -> Response:
        data = s.OpenTicketSerializer.validated(request.data)
        actor = actor_of(request)
        check_customer_intake(actor.role.value, request.data)
        customer_id = data.pop("customer_id", None)
        if actor.role is Role.CUSTOMER:
            if customer_id is not None and str(customer_id) != actor.id:
                raise PermissionDeniedError("Customers open tickets only for themselves.")
            customer = actor.id
        else:
            if customer_id is None:
                raise ValidationError({"customer_id": ["Staff must name the customer."]})
            if not User.objects.filter(
                pk=customer_id, role=User.Role.CUSTOMER, is_active=True
            ).exists():
                raise ValidationError({"customer_id": ["No such customer."]})
            customer = str(customer_id)
        res = get_application().open_ticket(actor, customer_id=customer, **data)
        return result(res, status.HTTP_201_CREATED, role=actor.role)


def ticket_as_of(request: Request, ticket_id: str, as_of: str | None) -> Response:
    """The ticket as it was at ``as_of`` (ISO time or version; None: now), from its events."""
    tid = ticket_uuid(ticket_id)
    ticket = load_visible_ticket(request, tid)  # permission first: nothing leaks about others'
    staff = actor_of(request).role is not Role.CUSTOMER
    if as_of is not None:
        version, by_number = _as_of_version(tid, as_of)
        shown = version  # as the user named it
        if by_number and not staff:
            # A customer's version numbers count public events (``Ticket.public_version``).
            if version > ticket.public_version:
                raise NotFoundError(f"The ticket has no version {version}.", id=ticket_id)
            version = ticket.real_version(version)
        ticket = get_application().get_ticket(tid, version)
        if ticket.version < version:
            raise NotFoundError(f"The ticket has no version {shown}.", id=ticket_id)
    events = [] if staff else get_application().ticket_events(tid)[: ticket.version]
    presented = present_ticket(ticket, include_internal=staff, events=events)
    return Response(presented, headers={"ETag": f'"{presented["version"]}"'})


def _as_of_version(ticket_id: UUID, as_of: str) -> tuple[int, bool]:
    """The real version ``as_of`` names, and whether it was given as a number (which a
    customer gives in public versions) rather than a time."""
    as_of = as_of.strip()
    version = parse_natural(as_of)
    if version is not None:
        if version < 1:
            raise ValidationError({"as_of": ["Versions start at 1."]})
        return version, True
    moment: datetime | None
    try:
        moment = parse_datetime(as_of.replace(" ", "+"))
    except ValueError:
        moment = None
    if moment is None:
        raise ValidationError({"as_of": ["Give an ISO-8601 time or a version number."]})
    if moment.tzinfo is None:
        raise ValidationError({"as_of": ["Give the time with its UTC offset, e.g. Z."]})
    try:
        moment = in_utc(moment)
    except ValueError as exc:
        raise ValidationError({"as_of": [str(exc)]}) from None
    at = get_application().version_at(ticket_id, moment)
    if at is None:
        raise NotFoundError("The ticket did not exist at that time.", id=str(ticket_id))
    return at, False


class TicketAsOfView(APIView):
    """``GET /api/tickets/{id}?as_of=``: the ticket rebuilt from its events as it was at a
    time or version (``config/urls.py`` routes a GET with ``as_of`` here)."""

    @extend_schema(exclude=True)  # documented with the URL's GET (read_api TicketDetailView)
    def get(self, request: Request, ticket_id: str) -> Response:
        return ticket_as_of(request, ticket_id, request.query_params.get("as_of"))


class EditTicketView(APIView):
    @extend_schema(
        request=s.EditTicketSerializer, responses={200: s.CommandResultSerializer}, tags=["tickets"]
    )
    def patch(self, request: Request, ticket_id: str) -> Response:
        data = s.EditTicketSerializer.validated(request.data)
        actor = actor_of(request)
        res = get_application().edit_ticket(ticket_uuid(ticket_id), actor, **data)
        return result(res, role=actor.role)


class TicketHistoryView(APIView):
    @extend_schema(responses={200: s.HistorySerializer}, tags=["audit"])
    def get(self, request: Request, ticket_id: str) -> Response:
        tid = ticket_uuid(ticket_id)
        load_visible_ticket(request, tid)  # permission check
        actor = actor_of(request)
        events = get_application().ticket_events(tid)
        staff = actor.role is not Role.CUSTOMER
        history = present_history(events, include_internal=staff)
        return Response({"ticket_id": str(tid), "events": name_people(history, staff=staff)})


# The services that act on tickets by themselves (``Role.SYSTEM`` actors: automatic
# assignment and SLA checks, the attachment scanner, AI drafts), as people read them.
SYSTEM_NAMES = {"automation": "Automation", "virus-scanner": "Virus scanner", "drafts": "AI drafts"}


def name_people(history: list[dict[str, Any]], *, staff: bool) -> list[dict[str, Any]]:
    """Give each event's actor, and the agent an assignment names, a display name: people
    read names, never ids (a service its own name). Customers see staff by name only (no
    e-mail)."""
    ids = {e["actor"]["id"] for e in history} | {e["data"].get("agent_id") for e in history}
    numeric = [int(i) for i in ids if isinstance(i, str) and i.isdigit()]
    names = {}
    for user in User.objects.filter(pk__in=numeric):
        full = user.get_full_name().strip()
        fallback = user.email if staff or user.role == User.Role.CUSTOMER else "Support agent"
        names[str(user.pk)] = full or fallback
    for event in history:
        actor = event["actor"]
        if actor["role"] == Role.SYSTEM.value:
            actor["name"] = SYSTEM_NAMES.get(str(actor["id"]), "Automation")
        else:
            actor["name"] = names.get(str(actor["id"]))
        agent = event["data"].get("agent_id")
        if agent is not None:
            event["data"]["agent_name"] = names.get(str(agent))
    return history


class MessagesView(APIView):
    throttle_classes = [MessageThrottle]  # the message lane applies the same (lane.py)

    @extend_schema(
        request=s.PostMessageSerializer,
        responses={201: s.MessageResultSerializer},
        parameters=[IF_MATCH],
        tags=["tickets"],
    )
    def post(self, request: Request, ticket_id: str) -> Response:
        data = s.PostMessageSerializer.validated(request.data)
        actor = actor_of(request)
        res = get_application().post_message(
            ticket_uuid(ticket_id), actor, seen_version=seen_version(request), **data
        )
        return result(res, status.HTTP_201_CREATED, role=actor.role)


class StatusView(APIView):
    @extend_schema(
        request=s.ChangeStatusSerializer,
        responses={200: s.CommandResultSerializer},
        tags=["tickets"],
    )
    def post(self, request: Request, ticket_id: str) -> Response:
        data = s.ChangeStatusSerializer.validated(request.data)
        actor = actor_of(request)
        res = get_application().change_status(ticket_uuid(ticket_id), actor, **data)
        return result(res, role=actor.role)


class AssignView(APIView):
    @extend_schema(
        request=s.AssignSerializer, responses={200: s.CommandResultSerializer}, tags=["tickets"]
    )
    def post(self, request: Request, ticket_id: str) -> Response:
        data = s.AssignSerializer.validated(request.data)
        actor = actor_of(request)
        if actor.role is Role.CUSTOMER:
            # Decide between 404 (not theirs) and 403 (theirs, but not allowed) like reads do.
            load_visible_ticket(request, ticket_uuid(ticket_id))
            raise PermissionDeniedError("Only agents and admins assign tickets.")
        agent_id = data["agent_id"]
        if (
            agent_id is not None
            and not User.objects.filter(
                pk=agent_id, role__in=[User.Role.AGENT, User.Role.ADMIN], is_active=True
            ).exists()
        ):
            raise ValidationError({"agent_id": ["No such agent."]})
        res = get_application().assign_ticket(
            ticket_uuid(ticket_id),
            actor,
            agent_id=None if agent_id is None else str(agent_id),
            reason=data["reason"],
        )
        return result(res)


class AvailabilityView(APIView):
    @extend_schema(
        request=s.AvailabilitySerializer,
        responses={200: s.CommandResultSerializer},
        tags=["agents"],
    )
    def post(self, request: Request) -> Response:
        actor = actor_of(request)
        if actor.role is Role.CUSTOMER:
            raise PermissionDeniedError("Only agents have an availability.")
        data = s.AvailabilitySerializer.validated(request.data)
        app = get_application()
        try:
            res = app.set_agent_availability(actor.id, data["availability"])
        except NotFoundError:
            user: User = request.user  # type: ignore[assignment]
            app.register_agent(user_id=actor.id, name=user.display_name)
            res = app.set_agent_availability(actor.id, data["availability"])
        return result(res)
