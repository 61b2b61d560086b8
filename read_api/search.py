"""``GET /api/search``: full-text search over tickets, messages and customers.

Parses and validates the query string, asks the search port (``projections.search``) and
returns the hits grouped by kind. Who sees what is the port's rule: customers search only
their own tickets and public messages, and never customers; staff search everything.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import APIException, NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from domain.lifecycle import Priority, Role, Status
from infra.auth.models import User
from infra.postgres.search import PostgresSearchIndex
from projections import search
from projections.search import (
    Principal,
    SearchHit,
    SearchIndex,
    SearchQuery,
    SearchUnavailableError,
)
from read_api.consistency import ConsistentReadMixin, projection_position

MAX_QUERY = 500
MAX_PAGE = 1000
DEFAULT_PAGE_SIZE = 10
# Response group -> document kind.
GROUPS = {"tickets": search.TICKET, "messages": search.MESSAGE, "customers": search.CUSTOMER}


def comma_separated(text: str, choices: list[str] | None = None) -> tuple[str, ...]:
    """``"a, b,a"`` -> ``("a", "b")``, each one of ``choices`` when given."""
    values = tuple(dict.fromkeys(v.strip().lower() for v in text.split(",") if v.strip()))
    bad = [v for v in values if choices is not None and v not in choices]
    if bad:
        raise serializers.ValidationError(
            f"Unknown value(s): {', '.join(bad)}; one of {', '.join(choices or [])}."
        )
    return values


class SearchParamsSerializer(serializers.Serializer[Any]):
    q = serializers.CharField(max_length=MAX_QUERY)
    kind = serializers.CharField(required=False, allow_blank=True)
    status = serializers.CharField(required=False, allow_blank=True)
    priority = serializers.CharField(required=False, allow_blank=True)
    agent = serializers.CharField(max_length=64, required=False)
    tags = serializers.CharField(max_length=1000, required=False, allow_blank=True)
    created_from = serializers.DateTimeField(required=False)
    created_to = serializers.DateTimeField(required=False)
    updated_from = serializers.DateTimeField(required=False)
    updated_to = serializers.DateTimeField(required=False)
    page = serializers.IntegerField(min_value=1, max_value=MAX_PAGE, default=1)
    page_size = serializers.IntegerField(
        min_value=1, max_value=search.MAX_PAGE_SIZE, default=DEFAULT_PAGE_SIZE
    )

    def validate_kind(self, value: str) -> tuple[str, ...]:
        return comma_separated(value, list(GROUPS))

    def validate_status(self, value: str) -> tuple[str, ...]:
        return comma_separated(value, [s.value for s in Status])

    def validate_priority(self, value: str) -> tuple[str, ...]:
        return comma_separated(value, [p.value for p in Priority])

    def validate_tags(self, value: str) -> tuple[str, ...]:
        return comma_separated(value)


class SearchHitSerializer(serializers.Serializer[Any]):
    id = serializers.CharField(help_text="The ticket, message or customer id.")
    ticket_id = serializers.UUIDField(allow_null=True)
    customer_id = serializers.CharField()
    title = serializers.CharField(help_text="A message's title is its ticket's subject.")
    snippet = serializers.CharField(
        help_text="HTML: the matching text, escaped, with <mark> around the matched words."
    )
    internal = serializers.BooleanField()
    status = serializers.ChoiceField(choices=[s.value for s in Status], allow_null=True)
    priority = serializers.ChoiceField(choices=[p.value for p in Priority], allow_null=True)
    assigned_agent_id = serializers.CharField(allow_null=True)
    tags = serializers.ListField(child=serializers.CharField())
    created_at = serializers.DateTimeField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)
    occurred_at = serializers.DateTimeField(
        allow_null=True, help_text="When the ticket was opened or the message posted."
    )


class SearchGroupSerializer(serializers.Serializer[Any]):
    count = serializers.IntegerField(
        help_text="The matches of this kind, not only this page; at least this many when "
        "`count_exact` is false (a very common word: the newest 1,000 matches are ranked "
        "and paged through, and counting stops there too)."
    )
    count_exact = serializers.BooleanField(help_text="False: `count` is a lower bound.")
    results = SearchHitSerializer(many=True)


class SearchGroupsSerializer(serializers.Serializer[Any]):
    tickets = SearchGroupSerializer()
    messages = SearchGroupSerializer()
    customers = SearchGroupSerializer()


class SearchResponseSerializer(serializers.Serializer[Any]):
    query = serializers.CharField()
    groups = SearchGroupsSerializer()
    page = serializers.IntegerField()
    page_size = serializers.IntegerField()


def _csv(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.STR, description=description)


def _time(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.DATETIME, description=description)


PARAMETERS = [
    OpenApiParameter(
        "q",
        OpenApiTypes.STR,
        required=True,
        description='Words to find; "quoted phrases", `or` and `-excluded` words work.',
    ),
    _csv("kind", "Comma-separated groups to search: tickets, messages, customers (default all)."),
    _csv("status", "Comma-separated statuses: any of them."),
    _csv("priority", "Comma-separated priorities: any of them."),
    _csv("agent", "The assigned agent's user id, or `none` for unassigned tickets."),
    _csv("tags", "Comma-separated tags: all must be on the ticket."),
    _time("created_from", "Tickets created at or after this time."),
    _time("created_to", "Tickets created before this time."),
    _time("updated_from", "Tickets changed at or after this time."),
    _time("updated_to", "Tickets changed before this time."),
    OpenApiParameter("page", OpenApiTypes.INT, description="Page number (of each group)."),
    OpenApiParameter(
        "page_size", OpenApiTypes.INT, description=f"Hits per group, 1-{search.MAX_PAGE_SIZE}."
    ),
    OpenApiParameter(
        "after",
        OpenApiTypes.INT,
        description="A position returned by a command: wait (bounded) until search reflects it.",
    ),
]


class SearchUnavailable(APIException):
    status_code = 503
    default_code = "search_unavailable"
    default_detail = (
        "Search is unavailable right now (its index cannot be reached); try again shortly."
    )


def unavailable(error: SearchUnavailableError) -> SearchUnavailable:
    return SearchUnavailable(f"Search is unavailable right now; try again shortly ({error}).")


class SearchBackend:
    """Where the search views ask: ``config/urls.py`` hands in the composition root's choice
    (PostgreSQL or OpenSearch, by settings), read on every request."""

    index: Callable[[], SearchIndex] = staticmethod(PostgresSearchIndex)
    position: Callable[[str], int] = staticmethod(projection_position)

    @classmethod
    def configure(cls, index: Callable[[], SearchIndex], position: Callable[[str], int]) -> None:
        cls.index = staticmethod(index)
        cls.position = staticmethod(position)


class SearchView(ConsistentReadMixin, APIView):
    """Search tickets, conversation messages and customers; hits grouped by kind, best first.

    Ticket filters (status, priority, agent, tags, dates) narrow tickets and messages, and
    leave customers out. Customers search only their own tickets, never internal notes and
    never other customers.
    """

    projection = search.NAME

    def read_position(self, name: str) -> int:
        try:
            return SearchBackend.position(name)
        except SearchUnavailableError as error:
            raise unavailable(error) from error

    @extend_schema(
        parameters=PARAMETERS, responses={200: SearchResponseSerializer}, tags=["search"]
    )
    def get(self, request: Request) -> Response:
        params = SearchParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        self.consistent(request)
        query = SearchQuery(
            text=data["q"],
            principal=principal(request),
            kinds=frozenset(GROUPS[g] for g in data.get("kind") or GROUPS),
            status=data.get("status", ()),
            priority=data.get("priority", ()),
            agent=data.get("agent"),
            tags=data.get("tags", ()),
            created_from=data.get("created_from"),
            created_to=data.get("created_to"),
            updated_from=data.get("updated_from"),
            updated_to=data.get("updated_to"),
            page=data["page"],
            page_size=data["page_size"],
        )
        try:
            results = SearchBackend.index().search(query)
        except SearchUnavailableError as error:
            raise unavailable(error) from error
        body = {
            "query": query.text,
            "groups": {
                group: {
                    "count": results.group(kind).count,
                    "count_exact": results.group(kind).exact,
                    "results": [present_hit(hit) for hit in results.group(kind).hits],
                }
                for group, kind in GROUPS.items()
            },
            "page": query.page,
            "page_size": query.page_size,
        }
        return self.mark(Response(body))


def _iso(value: datetime | None) -> str | None:
    # DRF's DateTimeField output (the API's format): ISO 8601 in UTC (TIME_ZONE), as "Z".
    if value is None:
        return None
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def present_hit(hit: SearchHit) -> dict[str, Any]:
    """What ``SearchHitSerializer`` documents, built directly: a page has up to 150 hits,
    and DRF's field-by-field serializer cost milliseconds of every search."""
    return {
        "id": hit.id,
        "ticket_id": str(hit.ticket_id) if hit.ticket_id is not None else None,
        "customer_id": hit.customer_id,
        "title": hit.title,
        "snippet": hit.snippet,
        "internal": hit.internal,
        "status": hit.status,
        "priority": hit.priority,
        "assigned_agent_id": hit.assigned_agent_id,
        "tags": list(hit.tags),
        "created_at": _iso(hit.created_at),
        "updated_at": _iso(hit.updated_at),
        "occurred_at": _iso(hit.occurred_at),
    }


def principal(request: Request) -> Principal:
    user: User = request.user  # type: ignore[assignment]
    return Principal(Role(user.role), str(user.pk))


class SimilarResponseSerializer(serializers.Serializer[Any]):
    ticket_id = serializers.UUIDField()
    results = SearchHitSerializer(many=True, help_text="Similar tickets, best first.")


class SimilarTicketsView(APIView):
    """Tickets like this one, best first (the agent's sidebar, AI drafts): staff only.
    ``more_like_this`` on OpenSearch, ranked full-text search on PostgreSQL."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "limit",
                OpenApiTypes.INT,
                description=f"At most this many, 1-{search.MAX_PAGE_SIZE}.",
            )
        ],
        responses={200: SimilarResponseSerializer},
        tags=["search"],
    )
    def get(self, request: Request, ticket_id: str) -> Response:
        who = principal(request)
        if not who.is_staff:
            raise PermissionDenied("Only agents and admins see similar tickets.")
        try:
            tid = UUID(ticket_id)
        except ValueError:
            raise NotFound("No such ticket.") from None
        raw = request.query_params.get("limit", str(search.SIMILAR_LIMIT))
        if not raw.isdigit() or not 1 <= int(raw) <= search.MAX_PAGE_SIZE:
            raise serializers.ValidationError(
                {"limit": [f"An integer from 1 to {search.MAX_PAGE_SIZE}."]}
            )
        try:
            hits = SearchBackend.index().similar(tid, who, int(raw))
        except SearchUnavailableError as error:
            raise unavailable(error) from error
        return Response({"ticket_id": str(tid), "results": [present_hit(h) for h in hits]})
