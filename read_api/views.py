"""The query side: DRF endpoints over the PostgreSQL read models (never the aggregates)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db.models import Exists, IntegerField, OuterRef, QuerySet, Subquery, TextField, Value
from django.db.models.functions import Cast, Coalesce, Concat, Trim
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from infra.api import StrictIntegerField, StrictSerializer, query_boolean
from infra.auth.models import User
from infra.postgres.models import (
    AgentRecord,
    AgentWorkloadRecord,
    AssignTeamRecord,
    CustomerStatsRecord,
    MessageRecord,
    NotificationReadRecord,
    NotificationRecord,
    SlaRecord,
    TicketRecord,
)
from read_api import serializers as s
from read_api.consistency import ConsistentReadMixin
from read_api.filters import VIEWS, TicketFilter, in_view
from read_api.pagination import StrictCursorPagination

READ_MODELS = "read_models"
ASSIGNMENT = "assignment"
SORTS = {"created_at", "-created_at", "updated_at", "-updated_at"}
AFTER = OpenApiParameter(
    "after",
    OpenApiTypes.INT,
    description="A position returned by a command: wait (bounded) until this read reflects it.",
)

AS_OF = OpenApiParameter(
    "as_of",
    str,
    description="An ISO-8601 time or a version number: the ticket as it was then, rebuilt "
    "from the event store (the audit view). Without it, the current read model answers.",
)


def is_staff(request: Request) -> bool:
    user: User = request.user  # type: ignore[assignment]
    return user.role in (User.Role.AGENT, User.Role.ADMIN)


def user_id(request: Request) -> str:
    return str(request.user.pk)


class TicketCursorPagination(StrictCursorPagination):
    """Cursor pagination: stable while new tickets arrive (no skipped or repeated rows)."""

    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 100
    ordering = "-created_at"

    def get_ordering(self, request: Request, queryset: Any, view: Any) -> tuple[str, ...]:
        sort = request.query_params.get("sort", self.ordering)
        if sort not in SORTS:
            raise ValidationError({"sort": [f"One of {', '.join(sorted(SORTS))}."]})
        if not is_staff(request):  # customers' updated_at follows public events only
            sort = sort.replace("updated_at", "public_updated_at")
        return (sort, "-id" if sort.startswith("-") else "id")


class MessageCursorPagination(StrictCursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = "version"

    def get_ordering(self, request: Request, queryset: Any, view: Any) -> tuple[str, ...]:
        # A customer's cursor holds public versions too: the same order for their messages.
        return (self.ordering if is_staff(request) else "public_version",)


class ConsistentListView(ConsistentReadMixin, generics.ListAPIView):  # type: ignore[type-arg]
    projection = READ_MODELS

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        self.consistent(request)
        return self.mark(super().list(request, *args, **kwargs))


SORT = OpenApiParameter(
    "sort",
    str,
    enum=sorted(SORTS),
    description="The order of the list (default `-created_at`, newest first).",
)


@extend_schema(parameters=[AFTER, SORT], tags=["tickets"])
class TicketListView(ConsistentListView):
    """The tickets the user may see (a customer: their own), filtered, paged by cursor."""

    pagination_class = TicketCursorPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = TicketFilter

    def get_serializer_class(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return s.TicketSerializer
        return s.TicketSerializer if is_staff(self.request) else s.CustomerTicketSerializer

    def get_queryset(self) -> QuerySet[TicketRecord]:
        qs = with_sla(TicketRecord.objects.all())
        if getattr(self, "swagger_fake_view", False):
            return qs
        if not is_staff(self.request):
            qs = qs.filter(customer_id=user_id(self.request))
        return qs


class TicketViewSerializer(serializers.Serializer[Any]):
    id = serializers.ChoiceField(choices=list(VIEWS))
    name = serializers.CharField()
    count = serializers.IntegerField()


@extend_schema(
    parameters=[AFTER], responses={200: TicketViewSerializer(many=True)}, tags=["tickets"]
)
class TicketViewsView(ConsistentReadMixin, APIView):
    """The agent's built-in views with how many tickets each holds now (agents and admins
    only); ``GET /api/tickets?view=<id>`` lists one."""

    projection = READ_MODELS

    def get(self, request: Request) -> Response:
        if not is_staff(request):
            raise PermissionDenied("Only agents and admins have ticket views.")
        self.consistent(request)
        tickets = with_sla(TicketRecord.objects.all())
        rows = [
            {"id": view, "name": name, "count": in_view(tickets, view, user_id(request)).count()}
            for view, name in VIEWS.items()
        ]
        return self.mark(Response(TicketViewSerializer(rows, many=True).data))


class TicketDetailView(ConsistentReadMixin, APIView):
    """One ticket from the read model; with ``as_of``, rebuilt from its events (the audit view)."""

    projection = READ_MODELS

    @extend_schema(
        operation_id="tickets_read",
        parameters=[AFTER, AS_OF],  # with as_of: the write side's audit view (config/urls.py)
        responses={
            200: PolymorphicProxySerializer(
                component_name="TicketOrTicketAsOf",
                serializers=[s.TicketSerializer, s.TicketAsOfSerializer],
                resource_type_field_name=None,
            )
        },
        tags=["tickets"],
    )
    def get(self, request: Request, ticket_id: str) -> Response:
        self.consistent(request)
        ticket = visible_ticket(request, ticket_id)
        if is_staff(request):
            serializer, version = s.TicketSerializer, ticket.version
        else:
            serializer, version = s.CustomerTicketSerializer, ticket.public_version
        data = serializer(ticket, context={"request": request}).data
        return self.mark(Response(data, headers={"ETag": f'"{version}"'}))


def with_sla(qs: QuerySet[TicketRecord]) -> QuerySet[TicketRecord]:
    """The ticket rows with their current SLA deadlines (from the SLA projection)."""
    clock = SlaRecord.objects.filter(ticket_id=OuterRef("id"))
    return qs.annotate(
        sla_first_response_due=Subquery(clock.values("first_response_due")[:1]),
        sla_resolution_due=Subquery(clock.values("resolution_due")[:1]),
    )


def visible_ticket(request: Request, ticket_id: str) -> TicketRecord:
    try:
        tid = UUID(ticket_id)
    except ValueError:
        raise NotFound("No such ticket.") from None
    qs = with_sla(TicketRecord.objects.filter(id=tid))
    if not is_staff(request):
        qs = qs.filter(customer_id=user_id(request))
    ticket = qs.first()
    if ticket is None:
        raise NotFound("No such ticket.")
    return ticket


@extend_schema(parameters=[AFTER], tags=["tickets"])
class MessageListView(ConsistentListView):
    """A ticket's thread, oldest first, paged by cursor (a customer: public messages only)."""

    pagination_class = MessageCursorPagination

    def get_serializer_class(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return s.MessageSerializer
        return s.MessageSerializer if is_staff(self.request) else s.CustomerMessageSerializer

    def get_queryset(self) -> QuerySet[MessageRecord]:
        ticket = visible_ticket(self.request, self.kwargs["ticket_id"])
        self.ticket = ticket
        qs = MessageRecord.objects.filter(ticket_id=ticket.id)
        if not is_staff(self.request):
            qs = qs.filter(internal=False)
        return qs

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        ticket = getattr(self, "ticket", None)
        if ticket is not None:
            by_message: dict[str, list[dict[str, Any]]] = {}
            for item in s.visible_attachments(
                ticket.attachments, ticket.id, user_id=user_id(self.request),
                staff=is_staff(self.request),
            ):  # fmt: skip
                if item["message_id"]:
                    by_message.setdefault(item["message_id"], []).append(item)
            context["files_by_message"] = by_message
        return context


class IdCursorPagination(StrictCursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = "id"


@extend_schema(tags=["customers"])
class CustomerDirectoryView(generics.ListAPIView):  # type: ignore[type-arg]
    """Customers with company, phone and ticket counts (agents and admins only)."""

    serializer_class = s.CustomerSerializer
    pagination_class = IdCursorPagination

    def get_queryset(self) -> QuerySet[User]:
        if not is_staff(self.request):
            raise PermissionDenied("Only agents and admins see the customer directory.")
        return customer_directory()


def customer_directory() -> QuerySet[User]:
    """Customers with their profile and ticket counts (the directory's rows)."""
    stats = CustomerStatsRecord.objects.filter(customer_id=OuterRef("pk_text"))
    return (
        User.objects.filter(role=User.Role.CUSTOMER)
        .select_related("customer_profile")
        .annotate(pk_text=Cast("pk", output_field=TextField()))
        .annotate(
            name=Trim(Concat("first_name", Value(" "), "last_name")),
            company=Coalesce("customer_profile__company", Value("")),
            phone=Coalesce("customer_profile__phone", Value("")),
            open_tickets=Coalesce(
                Subquery(stats.values("open_tickets")[:1]), 0, output_field=IntegerField()
            ),
            total_tickets=Coalesce(
                Subquery(stats.values("total_tickets")[:1]), 0, output_field=IntegerField()
            ),
        )
    )


@extend_schema(tags=["customers"], responses={200: s.CustomerSerializer})
class CustomerDetailView(APIView):
    """One customer: name, e-mail, company, phone and ticket counts (the agent's sidebar on a
    ticket; agents and admins only)."""

    def get(self, request: Request, customer_id: str) -> Response:
        if not is_staff(request):
            raise PermissionDenied("Only agents and admins see customers.")
        if not customer_id.isdigit() or len(customer_id) > 18:
            raise NotFound("No such customer.")
        customer = customer_directory().filter(pk=int(customer_id)).first()
        if customer is None:
            raise NotFound("No such customer.")
        return Response(s.CustomerSerializer(customer).data)


@extend_schema(tags=["agents"], responses={200: s.AgentWorkloadSerializer(many=True)})
class AgentWorkloadView(ConsistentReadMixin, APIView):
    """Every agent with availability, capacity and open tickets (agents and admins only)."""

    projection = READ_MODELS

    def get(self, request: Request) -> Response:
        if not is_staff(request):
            raise PermissionDenied("Only agents and admins see the workload.")
        self.consistent(request)
        loads = dict(AgentWorkloadRecord.objects.values_list("agent_user_id", "open_tickets"))
        rows = [
            {
                "user_id": a.user_id,
                "name": a.name,
                "availability": a.availability,
                "capacity": a.capacity,
                "skills": a.skills,
                "languages": a.languages,
                "open_tickets": loads.get(a.user_id, 0),
            }
            for a in AgentRecord.objects.order_by("name")
        ]
        return self.mark(Response(s.AgentWorkloadSerializer(rows, many=True).data))


@extend_schema(tags=["teams"], responses={200: s.TeamOptionSerializer(many=True)})
class TeamOptionsView(ConsistentReadMixin, APIView):
    """The active teams, by name: where agents and admins can route a ticket
    (``PUT /api/tickets/{id}/team``). The admin console manages them (``/api/admin/teams``)."""

    projection = ASSIGNMENT

    def get(self, request: Request) -> Response:
        if not is_staff(request):
            raise PermissionDenied("Only agents and admins route tickets to teams.")
        self.consistent(request)
        rows = AssignTeamRecord.objects.filter(archived=False).order_by("name", "id")
        return self.mark(Response(s.TeamOptionSerializer(rows, many=True).data))


NOTIFICATIONS = "notifications"
ADMINS = "admins"  # projections.notifications.ADMINS: the admins' shared notifications


def _read_mark(request: Request) -> Exists:
    return Exists(
        NotificationReadRecord.objects.filter(
            notification_id=OuterRef("id"), user_id=user_id(request)
        )
    )


def _notifications(request: Request) -> QuerySet[NotificationRecord]:
    """The user's own notifications (an admin's: also the admins' shared ones, such as SLA
    breaches), each with ``read`` (a read mark of theirs exists)."""
    mark = _read_mark(request)
    mine = [user_id(request)]
    if getattr(request.user, "role", None) == "admin":
        mine.append(ADMINS)
    return NotificationRecord.objects.filter(user_id__in=mine).annotate(read=mark)


def _unread(request: Request, qs: QuerySet[NotificationRecord]) -> QuerySet[NotificationRecord]:
    return qs.filter(~_read_mark(request))


def unread_count(request: Request) -> int:
    return _unread(request, _notifications(request)).count()


@extend_schema(
    tags=["notifications"],
    parameters=[
        AFTER,
        OpenApiParameter("unread", OpenApiTypes.BOOL, description="1: unread ones only"),
    ],
)
class NotificationListView(ConsistentListView):
    """The signed-in user's in-app notifications, newest first, with the unread count (in
    the body and in ``X-Unread-Count``)."""

    serializer_class = s.NotificationSerializer
    projection = NOTIFICATIONS

    class Pagination(StrictCursorPagination):
        page_size = 25
        page_size_query_param = "page_size"
        max_page_size = 100
        ordering = "-position"  # log order; a user has at most one notification per event

        def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
            page: dict[str, Any] = super().get_paginated_response_schema(schema)
            page["properties"]["unread_count"] = {
                "type": "integer",
                "description": "The user's unread notifications (also in X-Unread-Count).",
            }
            page["required"] = [*page.get("required", []), "unread_count"]
            return page

    pagination_class = Pagination

    def get_queryset(self) -> QuerySet[NotificationRecord]:
        qs = _notifications(self.request)
        unread = self.request.query_params.get("unread", "")
        try:
            only_unread = unread != "" and query_boolean(unread)
        except ValueError as exc:
            raise ValidationError({"unread": [str(exc)]}) from None
        if only_unread:
            qs = _unread(self.request, qs)
        return qs

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().list(request, *args, **kwargs)
        count = unread_count(request)
        if isinstance(response.data, dict):
            response.data["unread_count"] = count
        response["X-Unread-Count"] = str(count)
        return response


def _mark_read(request: Request, ids: QuerySet[NotificationRecord]) -> int:
    """Read marks for these notifications of the user (marking twice changes nothing)."""
    me = user_id(request)
    now = timezone.now()
    rows = [
        NotificationReadRecord(notification_id=nid, user_id=me, read_at=now)
        for nid in _unread(request, ids).values_list("id", flat=True)
    ]
    NotificationReadRecord.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


@extend_schema(tags=["notifications"], request=None, responses={200: s.NotificationReadSerializer})
class NotificationReadView(APIView):
    """Mark one of your notifications read. Not a ticket event: a read mark is the user's own
    data, written directly (ADR 0012). Someone else's notification is 404."""

    def post(self, request: Request, notification_id: str) -> Response:
        try:
            nid = UUID(notification_id)
        except ValueError:
            raise NotFound("No such notification.") from None
        mine = _notifications(request).filter(id=nid)
        if not mine.exists():
            raise NotFound("No such notification.")
        _mark_read(request, mine)
        return Response({"id": str(nid), "read": True, "unread_count": unread_count(request)})


class ReadAllSerializer(StrictSerializer):
    position = StrictIntegerField(
        required=False,
        min_value=0,
        help_text="Only notifications up to this log position (what the client has shown).",
    )


@extend_schema(
    tags=["notifications"], request=ReadAllSerializer, responses={200: s.ReadAllResultSerializer}
)
class NotificationReadAllView(APIView):
    """Mark all your notifications read (optionally only up to a position)."""

    def post(self, request: Request) -> Response:
        data = ReadAllSerializer.validated(request.data or {})
        qs = _notifications(request)
        if "position" in data:
            qs = qs.filter(position__lte=data["position"])
        marked = _mark_read(request, qs)
        return Response({"marked": marked, "unread_count": unread_count(request)})
