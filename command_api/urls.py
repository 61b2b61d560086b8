from django.urls import path

from command_api import agent_views, views

urlpatterns = [
    # GET/POST /tickets, GET/PATCH /tickets/{id} and /tickets/{id}/messages are composed with
    # the read side in config/urls.py.
    path(
        "tickets/<str:ticket_id>/history", views.TicketHistoryView.as_view(), name="ticket-history"
    ),
    path("tickets/<str:ticket_id>/status", views.StatusView.as_view(), name="ticket-status"),
    path("tickets/<str:ticket_id>/assign", views.AssignView.as_view(), name="ticket-assign"),
    path("agents/me/availability", views.AvailabilityView.as_view(), name="agent-availability"),
    path(
        "agents/<str:user_id>/working-hours",
        agent_views.AgentWorkingHoursView.as_view(),
        name="agent-working-hours",
    ),
    path(
        "agents/<str:user_id>/profile", agent_views.AgentProfileView.as_view(), name="agent-profile"
    ),
]
