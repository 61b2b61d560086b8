"""ASGI entry point (uvicorn serves this under ``make run``): HTTP through Django, and the
WebSocket endpoint ``/ws/`` through Channels (``config/realtime.py``, ``docs/realtime.md``).

With ``DESKSTREAM_PROJECTORS_IN_PROCESS`` on (the embedded mode), every projector runs in a
thread of this process. Several worker processes may each run them: a projector's batches
lock its position, so two instances never both apply an event. Without it, the push
projector still runs here (``DESKSTREAM_PUSH_IN_PROCESS``, on by default): it writes no
tables, and the in-memory channel layer only reaches sockets of its own process.
"""

import os
import threading

import django
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)  # what django.core.asgi.get_asgi_application() does first

from config.handler import SyncChainASGIHandler  # noqa: E402  (after Django is set up)

django_application = SyncChainASGIHandler()

from channels.routing import ProtocolTypeRouter  # noqa: E402  (after Django is set up)

from config import realtime  # noqa: E402

application = realtime.server_loop.bind(
    ProtocolTypeRouter({"http": django_application, "websocket": realtime.websocket_application()})
)

if settings.PROJECTORS_IN_PROCESS:
    from config.projectors import start_in_process

    start_in_process(threading.Event())
elif settings.PUSH_IN_PROCESS:
    realtime.push_thread(threading.Event()).start()
