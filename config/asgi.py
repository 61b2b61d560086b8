"""ASGI entry point (uvicorn serves this under ``make run``): HTTP through Django, and the
WebSocket endpoint ``/ws/`` through Channels (``docs/realtime.md``).

With ``DESKSTREAM_PROJECTORS_IN_PROCESS`` on (the embedded mode), every projector runs in a
thread of this process. Several worker processes may each run them: a projector's batches
lock its position, so two instances never both apply an event. Without it, the push
projector still runs here (``DESKSTREAM_PUSH_IN_PROCESS``, on by default): it writes no
tables, and the in-memory channel layer only reaches sockets of its own process. With Redis,
the processes sharing it elect one to publish (ADR 0044): the others wait for the lock.
"""

import gc
import os
import threading

import django
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)  # what django.core.asgi.get_asgi_application() does first

from channels.routing import ProtocolTypeRouter  # noqa: E402  (after Django is set up)

from command_api.application import get_application  # noqa: E402
from command_api.lane import MessageLane  # noqa: E402
from config import bootstrap  # noqa: E402
from config.urls import MESSAGES  # noqa: E402
from infra.auth.tokens import AsyncSessions  # noqa: E402
from infra.postgres.event_source import conninfo_from_django  # noqa: E402
from infra.server.handler import SyncChainASGIHandler  # noqa: E402
from infra.server.observe import RequestContext  # noqa: E402

django_application = SyncChainASGIHandler()
# Plain message commands on the event loop, the rest through Django (ADR 0024); both with a
# request id, a correlation id and their metrics (ADR 0042).
http_application = RequestContext(
    MessageLane(
        django_application,
        application=get_application,
        sessions=AsyncSessions(
            conninfo_from_django(settings.DATABASES["default"]),
            max_size=settings.MESSAGE_LANE_POOL_SIZE,
        ),
        route=MESSAGES,
        enabled=settings.MESSAGE_LANE,
    )
)

application = bootstrap.server_loop.bind(
    ProtocolTypeRouter({"http": http_application, "websocket": bootstrap.websocket_application()})
)

if settings.PROJECTORS_IN_PROCESS:
    bootstrap.start_in_process(threading.Event())
elif settings.PUSH_IN_PROCESS:
    bootstrap.start_push_in_process(threading.Event())

# Everything imported and built so far lives as long as the process: out of the collector's
# sight (gc.freeze), a full collection no longer walks the ~250,000 objects of the loaded
# project on the event loop (150-210 ms each, measured), only what requests make.
gc.collect()
gc.freeze()
