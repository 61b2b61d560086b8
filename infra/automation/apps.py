"""Django app for the automation settings (SLA rules, business calendar, assignment policy)."""

from django.apps import AppConfig


class AutomationConfig(AppConfig):
    name = "infra.automation"
    label = "automation"
    verbose_name = "Automation settings"
    default_auto_field = "django.db.models.BigAutoField"
