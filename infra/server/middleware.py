"""Django's middleware, pinned to synchronous mode.

Every view of the API is synchronous, and WhiteNoise's middleware is synchronous only. With
Django's async-capable middleware in the mix, an ASGI request hopped between the event loop
and worker threads for each of them (``process_request``, the WhiteNoise layer, the view)
and back. With every middleware synchronous, Django runs the whole chain and the view in one
``sync_to_async`` call: one thread hop per request.

The security middleware also adds what Django 5.2's does not: the Content-Security-Policy
(``settings.CONTENT_SECURITY_POLICY``) and ``X-Frame-Options`` (``settings.X_FRAME_OPTIONS``),
to every response that has none yet. The message lane copies its headers from here.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.middleware.common import CommonMiddleware
from django.middleware.security import SecurityMiddleware


class SyncSecurityMiddleware(SecurityMiddleware):
    async_capable = False

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response = super().process_response(request, response)
        if settings.CONTENT_SECURITY_POLICY:
            response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Frame-Options", settings.X_FRAME_OPTIONS)
        return response


class SyncCommonMiddleware(CommonMiddleware):
    async_capable = False
