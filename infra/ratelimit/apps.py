"""Django app for rate limiting: the PostgreSQL counters and the admin's limits."""

from django.apps import AppConfig


class RateLimitConfig(AppConfig):
    name = "infra.ratelimit"
    label = "ratelimit"
    verbose_name = "Rate limits"
    default_auto_field = "django.db.models.BigAutoField"
