"""Customer satisfaction (CSAT, ADR 0047): the customer rates a resolved ticket in the app,
or with a one-click signed link from the resolution e-mail (no sign-in).

Both record ``SatisfactionRated`` on the ticket through the same use case; the same rating
again stores nothing, so a link clicked twice (or prefetched, then clicked) records once.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from command_api import serializers as s
from command_api.application import Actor, get_application
from command_api.views import actor_of, result, ticket_uuid
from domain.lifecycle import Role, Status
from domain.ticket import COMMENT_MAX, RATING_MAX, RATING_MIN
from infra.api import StrictSerializer
from infra.auth.models import User
from infra.email.satisfaction import BadLinkError, RatingGrant, read_token


class RatingInput(StrictSerializer):
    rating = serializers.IntegerField(
        min_value=RATING_MIN, max_value=RATING_MAX, help_text="1 (poor) to 5 (great)."
    )
    comment = serializers.CharField(
        required=False, allow_blank=True, max_length=COMMENT_MAX, trim_whitespace=True
    )


class LinkRatingInput(RatingInput):
    token = serializers.CharField(max_length=500, help_text="The token of the e-mail's link.")


class RatingLinkSerializer(serializers.Serializer[Any]):
    ticket_id = serializers.UUIDField()
    subject = serializers.CharField()
    status = serializers.CharField()
    rateable = serializers.BooleanField(help_text="Resolved or closed: a rating is accepted.")
    rating = serializers.IntegerField(allow_null=True)
    comment = serializers.CharField()


@extend_schema(tags=["tickets"])
class SatisfactionView(APIView):
    @extend_schema(request=RatingInput, responses={200: s.CommandResultSerializer})
    def post(self, request: Request, ticket_id: str) -> Response:
        """The ticket's customer rates it once it is resolved (or closed); they may change
        their rating later. Staff get 403; another customer's ticket is 404."""
        actor = actor_of(request)
        if actor.role is not Role.CUSTOMER:
            raise PermissionDenied("Only the ticket's customer rates it.")
        data = RatingInput.validated(request.data)
        res = get_application().rate_satisfaction(
            ticket_uuid(ticket_id),
            actor,
            rating=data["rating"],
            comment=data.get("comment", ""),
            channel="app",
        )
        return result(res, role=actor.role)


def _grant(token: object) -> RatingGrant:
    try:
        grant = read_token(token)
    except BadLinkError as err:
        raise ValidationError({"token": [str(err)]}) from None
    if not User.objects.filter(pk=int(grant.customer_id) if grant.customer_id.isdigit() else -1,
                               is_active=True).exists():  # fmt: skip
        raise PermissionDenied("The link's customer account is no longer active.")
    return grant


@extend_schema(tags=["tickets"], auth=[])
class SatisfactionLinkView(APIView):
    """The rating page of a resolution e-mail's link: the token is the credential (one ticket,
    its customer, signed, expires), so no sign-in is needed."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    # 403: the link's customer account is deactivated; 404: the ticket is gone; 409: a
    # concurrent change of the ticket (as for every command).
    error_statuses = [400, 401, 403, 404, 409, 415]

    @extend_schema(
        parameters=[OpenApiParameter("token", OpenApiTypes.STR, required=True)],
        responses={200: RatingLinkSerializer},
    )
    def get(self, request: Request) -> Response:
        """What the link is about: the ticket's subject and its current rating."""
        grant = _grant(request.query_params.get("token"))
        ticket = get_application().get_ticket(grant.ticket_id)
        if ticket.customer_id != grant.customer_id:
            raise ValidationError({"token": ["The link is not valid."]})
        rating, comment = ticket.satisfaction or (None, "")
        return Response(
            {
                "ticket_id": str(ticket.id),
                "subject": ticket.subject,
                "status": ticket.status.value,
                "rateable": ticket.status in (Status.RESOLVED, Status.CLOSED),
                "rating": rating,
                "comment": comment,
            }
        )

    @extend_schema(request=LinkRatingInput, responses={200: s.CommandResultSerializer})
    def post(self, request: Request) -> Response:
        """Record the link's rating (and optionally a comment) as the ticket's customer.
        Posting the same rating again records nothing (``position`` null)."""
        data = LinkRatingInput.validated(request.data)
        grant = _grant(data["token"])
        res = get_application().rate_satisfaction(
            grant.ticket_id,
            Actor(id=grant.customer_id, role=Role.CUSTOMER),
            rating=data["rating"],
            comment=data.get("comment", ""),
            channel="email",
        )
        return result(res, role=Role.CUSTOMER)
