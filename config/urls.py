"""URL map: the API under /api/, its schema and interactive docs, and the web app.

Each URL names one view per HTTP method (``route``, ``infra/server/routing.py``): queries
from ``read_api``, commands from ``command_api``, so neither side imports the other.
"""

from __future__ import annotations

from django.urls import URLPattern, include, path, re_path
from drf_spectacular.views import SpectacularSwaggerSplitView

from command_api import (
    admin_views,
    agent_views,
    attachments,
    auth_views,
    drafts,
    email_views,
    macros,
    satisfaction,
    settings_views,
    signin_views,
    views,
)
from config import bootstrap
from infra.schema_view import SchemaView
from infra.server import webapp
from infra.server.routing import route
from read_api import admin_views as read_admin
from read_api import analytics, operations, saved_filters, search, ticket_emails
from read_api import auth_views as read_auth
from read_api import email_views as read_email
from read_api import macros as read_macros
from read_api import settings_views as read_settings
from read_api import views as read

handler400 = "command_api.errors.json_bad_request"
search.SearchBackend.configure(bootstrap.search_index, bootstrap.search_position)
# The upload and download views take their ports (blob store, master key, limits, how a scan
# is enqueued) from the composition root.
attachments.provide(bootstrap.attachment_ports)
drafts.provide(bootstrap.draft_ports)  # how a draft's generation is enqueued
# The console's projections page: status from, and rebuilds in, the composition root's stores.
admin_views.provide_rebuilds(
    lambda name, by: bootstrap.rebuilds().start(name, by), lambda: bootstrap.rebuilds().names()
)
admin_views.provide_socket_end(bootstrap.end_sockets)  # a deactivated user's sockets close
read_admin.provide_projector_status(lambda: bootstrap.rebuilds().status())

# /readyz asks the composition root; /metrics serves its scrape-time gauges (ADR 0042).
operations.provide(bootstrap.readiness)
bootstrap.serve_metrics()

handler404 = "command_api.errors.json_not_found"
handler500 = "command_api.errors.json_server_error"

MESSAGES = route(GET=read.MessageListView, POST=views.MessagesView)

api: list[URLPattern] = [
    # Tickets and their threads
    path("tickets", route(GET=read.TicketListView, POST=views.TicketsView), name="tickets"),
    path("ticket-views", route(GET=read.TicketViewsView), name="ticket-views"),
    path(
        "saved-filters",
        route(GET=saved_filters.SavedFilterListView, POST=saved_filters.CreateSavedFilterView),
        name="saved-filters",
    ),
    path(
        "saved-filters/<str:filter_id>",
        route(DELETE=saved_filters.SavedFilterView),
        name="saved-filter",
    ),
    # Macros (canned replies): shared and personal, each change an event (ADR 0046)
    path(
        "macros",
        route(GET=read_macros.MacroListView, POST=macros.CreateMacroView),
        name="macros",
    ),
    path(
        "macros/<str:macro_id>",
        route(PATCH=macros.EditMacroView, DELETE=macros.DeleteMacroView),
        name="macro",
    ),
    path(
        "macros/<str:macro_id>/filled",
        route(GET=read_macros.FilledMacroView),
        name="macro-filled",
    ),
    path(
        "tickets/<str:ticket_id>",
        route(
            GET=read.TicketDetailView,
            PATCH=views.EditTicketView,
            with_param={("GET", "as_of"): views.TicketAsOfView},
        ),
        name="ticket",
    ),
    path("tickets/<str:ticket_id>/messages", MESSAGES, name="messages"),
    path(
        "tickets/<str:ticket_id>/history",
        route(GET=views.TicketHistoryView),  # the event history: read from the event store
        name="ticket-history",
    ),
    path(
        "tickets/<str:ticket_id>/similar",
        route(GET=search.SimilarTicketsView),
        name="ticket-similar",
    ),
    path(
        "tickets/<str:ticket_id>/attachments",
        route(POST=attachments.AttachmentUploadView),
        name="ticket-attachments",
    ),
    path(
        "attachments/<str:attachment_id>",
        route(GET=attachments.AttachmentDownloadView),
        name="attachment-download",
    ),
    path(
        "tickets/<str:ticket_id>/drafts",
        route(POST=drafts.DraftsView),
        name="ticket-drafts",
    ),
    path(
        "tickets/<str:ticket_id>/drafts/<str:draft_id>",
        route(GET=drafts.DraftDetailView),
        name="ticket-draft",
    ),
    path("tickets/<str:ticket_id>/status", route(POST=views.StatusView), name="ticket-status"),
    path("tickets/<str:ticket_id>/assign", route(POST=views.AssignView), name="ticket-assign"),
    path("tickets/<str:ticket_id>/team", route(PUT=admin_views.TicketTeamView), name="ticket-team"),
    # Agents and customers
    path(
        "agents/me/availability",
        route(POST=views.AvailabilityView),
        name="agent-availability",
    ),
    path(
        "agents/<str:user_id>/working-hours",
        route(PUT=agent_views.AgentWorkingHoursView),
        name="agent-working-hours",
    ),
    path(
        "agents/<str:user_id>/profile",
        route(PATCH=agent_views.AgentProfileView),
        name="agent-profile",
    ),
    path("agents/workload", route(GET=read.AgentWorkloadView), name="agent-workload"),
    path("customers", route(GET=read.CustomerDirectoryView), name="customers"),
    path("teams", route(GET=read.TeamOptionsView), name="teams"),
    path("customers/<str:customer_id>", route(GET=read.CustomerDetailView), name="customer"),
    # Notifications and search
    path("notifications", route(GET=read.NotificationListView), name="notifications"),
    path(
        "notifications/read-all",
        route(POST=read.NotificationReadAllView),
        name="notifications-read-all",
    ),
    path(
        "notifications/<str:notification_id>/read",
        route(POST=read.NotificationReadView),
        name="notification-read",
    ),
    path("analytics/summary", route(GET=analytics.SummaryView), name="analytics-summary"),
    path("analytics/open", route(GET=analytics.OpenView), name="analytics-open"),
    path("analytics/daily", route(GET=analytics.DailyView), name="analytics-daily"),
    path(
        "analytics/status-over-time",
        route(GET=analytics.StatusOverTimeView),
        name="analytics-status-over-time",
    ),
    path(
        "analytics/first-response",
        route(GET=analytics.FirstResponseView),
        name="analytics-first-response",
    ),
    path("analytics/resolution", route(GET=analytics.ResolutionView), name="analytics-resolution"),
    path("analytics/sla", route(GET=analytics.SlaView), name="analytics-sla"),
    path("analytics/backlog", route(GET=analytics.BacklogView), name="analytics-backlog"),
    path("analytics/throughput", route(GET=analytics.ThroughputView), name="analytics-throughput"),
    path("analytics/reopens", route(GET=analytics.ReopensView), name="analytics-reopens"),
    path("analytics/drafts", route(GET=analytics.DraftsView), name="analytics-drafts"),
    path(
        "analytics/satisfaction",
        route(GET=analytics.SatisfactionView),
        name="analytics-satisfaction",
    ),
    path("analytics/volume", route(GET=analytics.VolumeView), name="analytics-volume"),
    path("search", route(GET=search.SearchView), name="search"),
    # API sessions
    path("auth/refresh", route(POST=auth_views.RefreshView), name="auth-refresh"),
    path("auth/logout", route(POST=auth_views.LogoutView), name="auth-logout"),
    path("auth/demo-login", route(POST=auth_views.DemoLoginView), name="auth-demo-login"),
    path("auth/providers", route(GET=read_auth.ProvidersView), name="auth-providers"),
    # Social sign-in (browser navigations) and its one-time code exchange
    path(
        "auth/login/<str:provider>",
        route(GET=signin_views.SocialBeginView),
        name="auth-login",
    ),
    path(
        "auth/complete/<str:provider>",
        route(GET=signin_views.SocialCompleteView),
        name="auth-complete",
    ),
    path("auth/exchange", route(POST=signin_views.SignInExchangeView), name="auth-exchange"),
    path("auth/me", route(GET=read_auth.MeView), name="auth-me"),
    # Admin settings and the local outbox
    path(
        "settings/email-templates",
        route(GET=read_email.EmailTemplateListView),
        name="email-templates",
    ),
    path(
        "settings/email-templates/<str:kind>",
        route(
            GET=read_email.EmailTemplateView,
            PUT=email_views.EmailTemplateEditView,
            DELETE=email_views.EmailTemplateEditView,
        ),
        name="email-template",
    ),
    path(
        "settings/email-templates/<str:kind>/preview",
        route(POST=read_email.EmailTemplatePreviewView),
        name="email-template-preview",
    ),
    path(
        "tickets/<str:ticket_id>/emails",
        route(GET=ticket_emails.TicketEmailsView),
        name="ticket-emails",
    ),
    path(
        "tickets/<str:ticket_id>/satisfaction",
        route(POST=satisfaction.SatisfactionView),
        name="ticket-satisfaction",
    ),
    path(
        "satisfaction/link",
        route(GET=satisfaction.SatisfactionLinkView, POST=satisfaction.SatisfactionLinkView),
        name="satisfaction-link",
    ),
    path(
        "me/email-preferences",
        route(GET=ticket_emails.EmailPreferencesView, PUT=email_views.EmailPreferencesEditView),
        name="email-preferences",
    ),
    path(
        "settings/sla-reminders",
        route(
            GET=read_settings.SlaReminderSettingsView,
            PUT=settings_views.SlaReminderSettingsEditView,
        ),
        name="settings-sla-reminders",
    ),
    path("outbox", route(GET=read_email.OutboxListView), name="outbox"),
    path("outbox/<str:name>", route(GET=read_email.OutboxMessageView), name="outbox-message"),
    path(
        "settings/sla",
        route(GET=read_settings.SlaSettingsView, PUT=settings_views.SlaSettingsEditView),
        name="settings-sla",
    ),
    path(
        "settings/calendar",
        route(GET=read_settings.CalendarSettingsView, PUT=settings_views.CalendarSettingsEditView),
        name="settings-calendar",
    ),
    path(
        "settings/assignment",
        route(
            GET=read_settings.AssignmentSettingsView,
            PUT=settings_views.AssignmentSettingsEditView,
        ),
        name="settings-assignment",
    ),
    path(
        "settings/rate-limits",
        route(
            GET=read_settings.RateLimitSettingsView,
            PUT=settings_views.RateLimitSettingsEditView,
        ),
        name="settings-rate-limits",
    ),
    path(
        "settings/drafts",
        route(GET=drafts.DraftSettingsView, PUT=drafts.DraftSettingsEditView),
        name="settings-drafts",
    ),
    path(
        "settings/tickets",
        route(
            GET=read_settings.TicketIntakeSettingsView,
            PUT=settings_views.TicketIntakeSettingsEditView,
        ),
        name="settings-tickets",
    ),
]

admin: list[URLPattern] = [
    # The admin console (admins only)
    path("agents", route(GET=read_admin.AdminAgentListView), name="admin-agents"),
    path("agents/invite", route(POST=admin_views.InviteAgentView), name="admin-agent-invite"),
    path(
        "agents/<str:user_id>/deactivate",
        route(POST=admin_views.DeactivateAgentView),
        name="admin-agent-deactivate",
    ),
    path(
        "agents/<str:user_id>/reactivate",
        route(POST=admin_views.ReactivateAgentView),
        name="admin-agent-reactivate",
    ),
    path(
        "agents/<str:user_id>/role", route(PUT=admin_views.AgentRoleView), name="admin-agent-role"
    ),
    path(
        "teams",
        route(GET=read_admin.AdminTeamListView, POST=admin_views.CreateTeamView),
        name="admin-teams",
    ),
    path("teams/<str:team_id>", route(PATCH=admin_views.EditTeamView), name="admin-team"),
    path(
        "teams/<str:team_id>/members",
        route(POST=admin_views.TeamMembersView),
        name="admin-team-members",
    ),
    path(
        "teams/<str:team_id>/members/<str:user_id>",
        route(DELETE=admin_views.TeamMemberView),
        name="admin-team-member",
    ),
    path("audit", route(GET=admin_views.AuditView), name="admin-audit"),
    path("audit.csv", route(GET=admin_views.AuditCsvView), name="admin-audit-csv"),
    path(
        "customers/<str:customer_id>",
        route(GET=read_admin.CustomerProfileView),
        name="admin-customer",
    ),
    path("projections", route(GET=read_admin.ProjectorStatusView), name="admin-projections"),
    path(
        "projections/rebuilds",
        route(GET=read_admin.RebuildListView),
        name="admin-rebuilds",
    ),
    path(
        "projections/rebuilds/<str:rebuild_id>",
        route(GET=read_admin.RebuildView),
        name="admin-rebuild",
    ),
    path(
        "projections/<str:name>/rebuild",
        route(POST=admin_views.RebuildProjectionView),
        name="admin-projection-rebuild",
    ),
]

urlpatterns = [
    path("api/admin/", include(admin)),
    path("healthz", operations.HealthView.as_view(), name="healthz"),
    path("readyz", operations.ReadyView.as_view(), name="readyz"),
    path("metrics", operations.MetricsView.as_view(), name="metrics"),
    path("api/", include(api)),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    # Swagger UI with its init script at ?script= rather than inline (the CSP allows none).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
    # The web app: index.html for / and its client-side routes (its files: WhiteNoise).
    re_path(r"^(?!api/|ws/|static/|assets/)(?:[\w./-]*)$", webapp.spa_index, name="web-app"),
]
