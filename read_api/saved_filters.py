"""Saved filters: an agent's own list filters under a name, shown as extra views with counts.

They are the agent's preference, not a fact of the desk, so they live in a plain table
(``saved_filter``) rather than in events (ADR 0046). A saved filter holds the very query
parameters of ``GET /api/tickets`` and is counted by the same ``TicketFilter``, so a count
always matches the list the web app then shows.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from domain.lifecycle import Priority, Status
from infra.api import StrictCharField, StrictSerializer
from infra.postgres.models import SavedFilterRecord, TicketRecord
from read_api.consistency import ConsistentReadMixin
from read_api.filters import VIEWS, TicketFilter
from read_api.views import READ_MODELS, is_staff, user_id, with_sla

SAVED_MAX = 50  # per agent
NAME_MAX = 80


class FilterValuesSerializer(StrictSerializer):
    """The list filters as ``GET /api/tickets`` takes them (a subset, each optional)."""

    status = serializers.ListField(
        child=serializers.ChoiceField(choices=[s.value for s in Status]),
        max_length=len(Status),
        required=False,
    )
    priority = serializers.ListField(
        child=serializers.ChoiceField(choices=[p.value for p in Priority]),
        max_length=len(Priority),
        required=False,
    )
    tags = serializers.ListField(
        child=StrictCharField(max_length=40), max_length=20, required=False
    )
    agent = StrictCharField(
        max_length=18, required=False, help_text="An agent's user id, or 'none'."
    )
    view = serializers.ChoiceField(choices=list(VIEWS), required=False)


class CreateSavedFilterSerializer(StrictSerializer):
    name = StrictCharField(max_length=NAME_MAX)
    filters = FilterValuesSerializer()


class SavedFilterSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    filters = FilterValuesSerializer()
    count = serializers.IntegerField(help_text="How many tickets the list shows with them now.")


def query_of(filters: dict[str, Any]) -> dict[str, str]:
    """The saved values as the list's query parameters."""
    query: dict[str, str] = {}
    for name, value in filters.items():
        if isinstance(value, list):
            if value:
                query[name] = ",".join(value)
        elif value:
            query[name] = str(value)
    return query


def _staff(request: Request) -> None:
    if not is_staff(request):
        raise PermissionDenied("Only agents and admins save filters.")


@extend_schema(tags=["tickets"])
class SavedFilterListView(ConsistentReadMixin, APIView):
    projection = READ_MODELS

    @extend_schema(
        parameters=[OpenApiParameter("after", OpenApiTypes.INT)],
        responses={200: SavedFilterSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        """The caller's saved filters, oldest first, each with its live count."""
        _staff(request)
        self.consistent(request)
        tickets = with_sla(TicketRecord.objects.all())
        rows = []
        for saved in SavedFilterRecord.objects.filter(user_id=user_id(request)).order_by("id"):
            found = TicketFilter(data=query_of(saved.filters), queryset=tickets, request=request)
            rows.append(
                {
                    "id": saved.id,
                    "name": saved.name,
                    "filters": saved.filters,
                    "count": found.qs.count(),
                }
            )
        return self.mark(Response(SavedFilterSerializer(rows, many=True).data))


@extend_schema(tags=["tickets"])
class CreateSavedFilterView(APIView):
    @extend_schema(request=CreateSavedFilterSerializer, responses={201: SavedFilterSerializer})
    def post(self, request: Request) -> Response:
        """Save the current list filters under a name (unique per agent)."""
        _staff(request)
        data = CreateSavedFilterSerializer.validated(request.data)
        name = " ".join(data["name"].split())
        if not name:
            raise ValidationError({"name": ["Give the filter a name."]})
        mine = SavedFilterRecord.objects.filter(user_id=user_id(request))
        if mine.count() >= SAVED_MAX:
            raise ValidationError({"name": [f"At most {SAVED_MAX} saved filters."]})
        filters = {k: v for k, v in data["filters"].items() if v not in (None, "", [])}
        try:
            with transaction.atomic():
                saved = SavedFilterRecord.objects.create(
                    user_id=user_id(request), name=name, filters=filters
                )
        except IntegrityError:
            raise ValidationError({"name": ["You have a saved filter of that name."]}) from None
        tickets = with_sla(TicketRecord.objects.all())
        count = TicketFilter(data=query_of(filters), queryset=tickets, request=request).qs.count()
        row = {"id": saved.id, "name": name, "filters": filters, "count": count}
        return Response(SavedFilterSerializer(row).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["tickets"])
class SavedFilterView(APIView):
    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, filter_id: str) -> Response:
        """Delete one of the caller's saved filters."""
        _staff(request)
        if not filter_id.isdigit() or len(filter_id) > 18:
            raise NotFound("No such saved filter.")
        deleted, _ = SavedFilterRecord.objects.filter(
            id=int(filter_id), user_id=user_id(request)
        ).delete()
        if not deleted:
            raise NotFound("No such saved filter.")
        return Response(status=status.HTTP_204_NO_CONTENT)
