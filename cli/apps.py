from django.apps import AppConfig


class CliConfig(AppConfig):
    """The command line as an app, so its management commands (``projector``, ...) load."""

    name = "cli"
    label = "composition"  # the label the commands had under config/, kept for migrations
    verbose_name = "Command line"
