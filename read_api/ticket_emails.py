"""Staff queries on e-mail: which notification e-mails went out for a ticket (the outbox,
ADR 0047), and a user's own e-mail preferences."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from infra.auth.models import User
from infra.email.models import EmailPreference
from infra.postgres.models import NotificationOutboxRecord, TicketRecord

EMAILS_MAX = 200


def require_staff(request: Request) -> None:
    if getattr(request.user, "role", None) not in ("agent", "admin"):
        raise PermissionDenied("Only agents and admins see this.")


class TicketEmailSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    kind = serializers.CharField(help_text="The notification kind (its e-mail template).")
    recipient_id = serializers.CharField()
    recipient_name = serializers.CharField(allow_null=True)
    recipient_email = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(
        choices=NotificationOutboxRecord.Status.values,
        help_text="pending: to send or to retry; claimed / handed_over: being sent now; "
        "failed: gave up; skipped: not sent on purpose (no address, opted out, cancelled, too "
        "old); uncertain: its sender was lost after handing it over (maybe delivered, never "
        "sent again).",
    )
    attempts = serializers.IntegerField()
    created_at = serializers.DateTimeField(help_text="When the event's e-mail was recorded.")
    sent_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(help_text="Why it failed or was skipped ('' if sent).")
    position = serializers.IntegerField(help_text="The log position of the event.")


class TicketEmailListSerializer(serializers.Serializer[Any]):
    ticket_id = serializers.UUIDField()
    results = TicketEmailSerializer(many=True)


@extend_schema(tags=["tickets"])
class TicketEmailsView(APIView):
    @extend_schema(responses={200: TicketEmailListSerializer})
    def get(self, request: Request, ticket_id: str) -> Response:
        """The notification e-mails of this ticket, newest first (at most 200), with their
        delivery state. Staff only: customers get 403."""
        require_staff(request)
        try:
            tid = UUID(ticket_id)
        except ValueError:
            raise NotFound("No such ticket.") from None
        if not TicketRecord.objects.filter(id=tid).exists():
            raise NotFound("No such ticket.")
        rows: list[dict[str, Any]] = [
            dict(row)
            for row in NotificationOutboxRecord.objects.filter(ticket_id=tid)
            .order_by("-position", "-id")
            .values(
                "id", "kind", "recipient_id", "status", "attempts", "created_at", "sent_at",
                "last_error", "position",
            )[:EMAILS_MAX]
        ]  # fmt: skip
        pks = [int(r["recipient_id"]) for r in rows if str(r["recipient_id"]).isdigit()]
        users = {str(u.pk): u for u in User.objects.filter(pk__in=pks)}
        for row in rows:
            user = users.get(str(row["recipient_id"]))
            row["recipient_name"] = user.display_name if user else None
            row["recipient_email"] = user.email if user else None
        return Response({"ticket_id": str(tid), "results": rows})


class EmailPreferencesSerializer(serializers.Serializer[Any]):
    sla_emails = serializers.BooleanField(
        help_text="E-mail me SLA reminders and breaches of my tickets (in-app: always)."
    )


@extend_schema(tags=["notifications"])
class EmailPreferencesView(APIView):
    @extend_schema(responses={200: EmailPreferencesSerializer})
    def get(self, request: Request) -> Response:
        """Your optional e-mails (agents and admins)."""
        require_staff(request)
        row = EmailPreference.objects.filter(user_id=str(request.user.pk)).first()
        return Response({"sla_emails": bool(row and row.sla_emails)})
