from django.apps import AppConfig


class CompositionConfig(AppConfig):
    """The composition root as an app, so its management commands (``projector``) load."""

    name = "config"
    label = "composition"
    verbose_name = "Composition root"
