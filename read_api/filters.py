"""Ticket-list filters (django-filter): status, priority, agent, tags, date ranges."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone
from django_filters.fields import IsoDateTimeField

from domain.lifecycle import Priority, Status
from infra.api import in_utc, query_boolean
from infra.postgres.models import TicketRecord


class CSVChoiceFilter(django_filters.BaseInFilter, django_filters.CharFilter):
    """``?status=open,assigned``: any of the listed values."""


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO-8601 time, sent to PostgreSQL in UTC (``infra.api.in_utc``)."""

    def to_python(self, value: Any) -> datetime | None:
        moment: datetime | None = super().to_python(value)
        if moment is None:
            return None
        try:
            return in_utc(moment)
        except ValueError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from None


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class QueryBooleanField(forms.NullBooleanField):
    """``true``/``1`` or ``false``/``0`` (``infra.api.query_boolean``); empty: no filter.
    (django-filter's own ``BooleanFilter`` reads anything else as "no filter".)"""

    widget = forms.TextInput  # the text as given (NullBooleanSelect maps "maybe" to None)

    def to_python(self, value: Any) -> bool | None:  # type: ignore[override]  # (stubs: bool)
        if value in (None, ""):
            return None
        try:
            return query_boolean(str(value))
        except ValueError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from None


class QueryBooleanFilter(django_filters.BooleanFilter):
    field_class = QueryBooleanField


ACTIVE = ("open", "assigned", "in_progress", "waiting_on_customer")
DUE_SOON = timedelta(hours=1)
# The agent's built-in views (issue 20): name -> what it shows. ``GET /api/tickets?view=``
# lists one, ``GET /api/ticket-views`` counts each; one definition serves both.
VIEWS = {
    "mine": "My open tickets",
    "unassigned": "Unassigned",
    "waiting": "Waiting on customer",
    "due_soon": "Due within the hour",
    "breached": "SLA breached",
    "all": "All tickets",
}

VIEW_CHOICES = list(VIEWS)  # the schema's TicketViewEnum (ticket views, saved filters)


def in_view(qs: QuerySet[TicketRecord], view: str, user_id: str) -> QuerySet[TicketRecord]:
    """The tickets of a built-in view. ``qs`` carries the SLA deadlines (``with_sla``)."""
    active = qs.filter(status__in=ACTIVE)
    if view == "mine":
        return active.filter(assigned_agent_id=user_id)
    if view == "unassigned":
        return active.filter(assigned_agent_id__isnull=True)
    if view == "waiting":
        return qs.filter(status="waiting_on_customer")
    if view == "due_soon":
        now = timezone.now()
        soon = Q(sla_first_response_due__gte=now, sla_first_response_due__lt=now + DUE_SOON) | Q(
            sla_resolution_due__gte=now, sla_resolution_due__lt=now + DUE_SOON
        )
        return active.filter(soon, sla_breaches=[])
    if view == "breached":
        return active.exclude(sla_breaches=[])
    return qs


class TicketFilter(django_filters.FilterSet):
    status = CSVChoiceFilter(field_name="status", lookup_expr="in")
    priority = CSVChoiceFilter(field_name="priority", lookup_expr="in")
    agent = django_filters.CharFilter(method="filter_agent", label="assigned agent id, or 'none'")
    customer = django_filters.CharFilter(field_name="customer_id")
    tags = django_filters.CharFilter(method="filter_tags", label="comma-separated; all must match")
    created_from = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_to = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")
    updated_from = UtcDateTimeFilter(method="filter_updated", lookup_expr="gte")
    updated_to = UtcDateTimeFilter(method="filter_updated", lookup_expr="lt")
    sla_breached = QueryBooleanFilter(
        method="filter_sla_breached", label="true: an SLA target was breached; false: none"
    )
    view = django_filters.ChoiceFilter(
        method="filter_view",
        choices=list(VIEWS.items()),
        label="A built-in view (staff): " + ", ".join(VIEWS),
    )

    class Meta:
        model = TicketRecord
        fields: list[str] = []

    def filter_agent(self, qs: QuerySet[TicketRecord], name: str, value: str) -> Any:
        if value == "none":
            return qs.filter(assigned_agent_id__isnull=True)
        return qs.filter(assigned_agent_id=value)

    def filter_updated(self, qs: QuerySet[TicketRecord], name: str, value: Any) -> Any:
        # A customer's updated_at follows public events only (read_api/serializers.py).
        user = getattr(self.request, "user", None)
        staff = getattr(user, "role", None) in ("agent", "admin")
        field = "updated_at" if staff else "public_updated_at"
        lookup = "gte" if name == "updated_from" else "lt"
        return qs.filter(**{f"{field}__{lookup}": value})

    def filter_view(self, qs: QuerySet[TicketRecord], name: str, value: str) -> Any:
        user = getattr(self.request, "user", None)
        return in_view(qs, value, str(getattr(user, "pk", "")))

    def filter_sla_breached(self, qs: QuerySet[TicketRecord], name: str, value: bool) -> Any:
        return qs.exclude(sla_breaches=[]) if value else qs.filter(sla_breaches=[])

    def filter_tags(self, qs: QuerySet[TicketRecord], name: str, value: str) -> Any:
        tags = [t.strip().lower() for t in value.split(",") if t.strip()]
        return qs.filter(tags__contains=tags) if tags else qs

    @property
    def qs(self) -> Any:
        self._check_choices()
        return super().qs

    def _check_choices(self) -> None:
        from rest_framework.exceptions import ValidationError

        allowed = {"status": {s.value for s in Status}, "priority": {p.value for p in Priority}}
        errors = {}
        for name, values in allowed.items():
            raw = (self.data or {}).get(name)
            if raw:
                bad = [v for v in str(raw).split(",") if v not in values]
                if bad:
                    errors[name] = [f"Unknown value(s): {', '.join(bad)}."]
        if errors:
            raise ValidationError(errors)
