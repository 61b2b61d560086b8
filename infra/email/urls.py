from django.urls import path

from infra.email import views

urlpatterns = [
    path("settings/email-templates", views.EmailTemplateListView.as_view(), name="email-templates"),
    path(
        "settings/email-templates/<str:kind>",
        views.EmailTemplateView.as_view(),
        name="email-template",
    ),
    path("outbox", views.OutboxListView.as_view(), name="outbox"),
    path("outbox/<str:name>", views.OutboxMessageView.as_view(), name="outbox-message"),
]
