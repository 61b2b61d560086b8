"""Django app for AI drafts: the draft cache and the admin's draft settings."""

from django.apps import AppConfig


class DraftsConfig(AppConfig):
    name = "infra.llm"
    label = "drafts"
    verbose_name = "AI drafts"
    default_auto_field = "django.db.models.BigAutoField"
