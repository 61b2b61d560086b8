from django.apps import AppConfig


class CommandApiConfig(AppConfig):
    name = "command_api"
    verbose_name = "Command API (write side)"
