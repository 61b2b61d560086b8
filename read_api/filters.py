"""Ticket-list filters (django-filter): status, priority, agent, tags, date ranges."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet

from domain.lifecycle import Priority, Status
from infra.postgres.models import TicketRecord


class CSVChoiceFilter(django_filters.BaseInFilter, django_filters.CharFilter):
    """``?status=open,assigned``: any of the listed values."""


class TicketFilter(django_filters.FilterSet):
    status = CSVChoiceFilter(field_name="status", lookup_expr="in")
    priority = CSVChoiceFilter(field_name="priority", lookup_expr="in")
    agent = django_filters.CharFilter(method="filter_agent", label="assigned agent id, or 'none'")
    customer = django_filters.CharFilter(field_name="customer_id")
    tags = django_filters.CharFilter(method="filter_tags", label="comma-separated; all must match")
    created_from = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_to = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    updated_from = django_filters.IsoDateTimeFilter(method="filter_updated", lookup_expr="gte")
    updated_to = django_filters.IsoDateTimeFilter(method="filter_updated", lookup_expr="lt")
    sla_breached = django_filters.BooleanFilter(
        method="filter_sla_breached", label="true: an SLA target was breached; false: none"
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
