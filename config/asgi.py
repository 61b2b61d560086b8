"""ASGI entry point (uvicorn serves this under ``make run``; Channels joins it later)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_asgi_application()
