"""URL map: the API under /api/, its schema and interactive docs, and the web app.

Where one path serves both sides (``GET /api/tickets`` reads the read model, ``POST`` is a
command), the endpoint class is composed here, in the composition root, so neither side
imports the other.
"""

from __future__ import annotations

from django.urls import include, path, re_path
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.request import Request
from rest_framework.response import Response

from command_api import views as command
from command_api.serializers import TicketAsOfSerializer
from config import webapp
from read_api import views as read
from read_api.serializers import TicketSerializer


class TicketsEndpoint(read.TicketListView):
    """GET: the ticket list (read model). POST: open a ticket (command)."""

    post = command.TicketsView.post


class TicketEndpoint(read.TicketDetailView):
    """GET: the ticket (read model; with ``as_of``: rebuilt from events). PATCH: edit."""

    patch = command.TicketView.patch

    @extend_schema(
        operation_id="tickets_read",
        parameters=[read.AFTER, command.AS_OF],
        # The read model's ticket, or with ``as_of`` the ticket rebuilt from its events.
        responses={
            200: PolymorphicProxySerializer(
                component_name="TicketOrTicketAsOf",
                serializers=[TicketSerializer, TicketAsOfSerializer],
                resource_type_field_name=None,
            )
        },
        tags=["tickets"],
    )
    def get(self, request: Request, ticket_id: str) -> Response:
        if "as_of" in request.query_params:
            return command.ticket_as_of(request, ticket_id, request.query_params["as_of"])
        return super().get(request, ticket_id)


class MessagesEndpoint(read.MessageListView):
    """GET: the thread, paginated (read model). POST: post a message (command)."""

    post = command.MessagesView.post


handler404 = "command_api.errors.json_not_found"
handler500 = "command_api.errors.json_server_error"

urlpatterns = [
    path("api/tickets", TicketsEndpoint.as_view(), name="tickets"),
    path("api/tickets/<str:ticket_id>", TicketEndpoint.as_view(), name="ticket"),
    path("api/tickets/<str:ticket_id>/messages", MessagesEndpoint.as_view(), name="messages"),
    path("api/", include("infra.auth.urls")),
    path("api/", include("command_api.urls")),
    path("api/", include("read_api.urls")),
    path("api/", include("infra.email.urls")),
    path("api/", include("infra.automation.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    # The web app: index.html for / and its client-side routes (its files: WhiteNoise).
    re_path(r"^(?!api/|ws/|static/|assets/)(?:[\w./-]*)$", webapp.spa_index, name="web-app"),
]
