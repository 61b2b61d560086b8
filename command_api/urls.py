from django.urls import path

from command_api import views

urlpatterns = [
    path("tickets", views.TicketsView.as_view(), name="tickets"),
    path("tickets/<str:ticket_id>", views.TicketView.as_view(), name="ticket"),
    path(
        "tickets/<str:ticket_id>/history", views.TicketHistoryView.as_view(), name="ticket-history"
    ),
    path("tickets/<str:ticket_id>/messages", views.MessagesView.as_view(), name="ticket-messages"),
    path("tickets/<str:ticket_id>/status", views.StatusView.as_view(), name="ticket-status"),
    path("tickets/<str:ticket_id>/assign", views.AssignView.as_view(), name="ticket-assign"),
    path("agents/me/availability", views.AvailabilityView.as_view(), name="agent-availability"),
]
