"""Django's middleware, pinned to synchronous mode.

Every view of the API is synchronous, and WhiteNoise's middleware is synchronous only. With
Django's async-capable middleware in the mix, an ASGI request hopped between the event loop
and worker threads for each of them (``process_request``, the WhiteNoise layer, the view)
and back. With every middleware synchronous, Django runs the whole chain and the view in one
``sync_to_async`` call: one thread hop per request.
"""

from __future__ import annotations

from django.middleware.common import CommonMiddleware
from django.middleware.security import SecurityMiddleware


class SyncSecurityMiddleware(SecurityMiddleware):
    async_capable = False


class SyncCommonMiddleware(CommonMiddleware):
    async_capable = False
