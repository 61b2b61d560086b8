from django.apps import AppConfig


class ReadModelsConfig(AppConfig):
    name = "infra.postgres"
    label = "readmodels"
    verbose_name = "PostgreSQL read models, search index and projector positions"
    default_auto_field = "django.db.models.BigAutoField"
