"""Django app for the e-mail templates an admin can edit."""

from django.apps import AppConfig


class EmailConfig(AppConfig):
    name = "infra.email"
    label = "email"
    verbose_name = "E-mail templates and senders"
    default_auto_field = "django.db.models.BigAutoField"
