"""ASGI entry point (uvicorn serves this under ``make run``; Channels joins it later).

With ``DESKSTREAM_PROJECTORS_IN_PROCESS`` on (the embedded mode), every projector runs in a
thread of this process. Several worker processes may each run them: a projector's batches
lock its position, so two instances never both apply an event.
"""

import os
import threading

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_asgi_application()

if settings.PROJECTORS_IN_PROCESS:
    from config.projectors import start_in_process

    start_in_process(threading.Event())
