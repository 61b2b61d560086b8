from django.urls import path

from read_api import search, views

urlpatterns = [
    path("customers", views.CustomerDirectoryView.as_view(), name="customers"),
    path("agents/workload", views.AgentWorkloadView.as_view(), name="agent-workload"),
    path("notifications", views.NotificationListView.as_view(), name="notifications"),
    path(
        "notifications/read-all",
        views.NotificationReadAllView.as_view(),
        name="notifications-read-all",
    ),
    path(
        "notifications/<str:notification_id>/read",
        views.NotificationReadView.as_view(),
        name="notification-read",
    ),
    path("search", search.SearchView.as_view(), name="search"),
]
