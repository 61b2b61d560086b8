"""Django app for users, roles, profiles and API sessions."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "infra.auth"
    label = "accounts"
    verbose_name = "Accounts and API sessions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from infra.auth import schema  # noqa: F401 - registers the OpenAPI extension
