from django.urls import path

from infra.automation import views

urlpatterns = [
    path("settings/sla", views.SlaSettingsView.as_view(), name="settings-sla"),
    path("settings/calendar", views.CalendarSettingsView.as_view(), name="settings-calendar"),
    path("settings/assignment", views.AssignmentSettingsView.as_view(), name="settings-assignment"),
]
