"""Django's ASGI handler with one thread hop per request instead of five.

Every view and middleware here is synchronous. Django's ``ASGIHandler`` still runs them the
async way: ``request_started`` in a thread, the middleware chain in a thread, back to the
event loop for the (async) inner handler, into a thread again for the view, and once more
for ``response.close()``; and the thread is a new one for every request (asgiref's
per-request ``ThreadSensitiveContext``). Profiled under load, that plumbing cost about a
quarter of the web server's CPU per command (docs/adr/0017-request-and-projector-overhead.md).

``SyncChainASGIHandler`` reads the body on the event loop, then does everything Django
would do for the request — ``request_started``, building the request, the synchronous
middleware chain and view, and for a response held in memory ``response.close()`` (which
sends ``request_finished`` and so returns the database connection to the pool) — in one
call on a pooled thread, and sends the response from the event loop. Streaming responses
(static files) are closed after sending, as Django does.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

from asgiref.sync import sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse, HttpResponseBase
from django.urls import set_script_prefix

# Threads that run requests. Group commit batches the commands that wait at the same time,
# so this bounds its batches too; each thread holds a database connection only while its
# request runs (the pool, DESKSTREAM_DB_POOL_SIZE, bounds those).
REQUEST_THREADS = int(os.environ.get("DESKSTREAM_REQUEST_THREADS", "64"))
_executor = ThreadPoolExecutor(REQUEST_THREADS, thread_name_prefix="request")


class SyncChainASGIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        # The synchronous chain: no async adapters between the middleware and the view.
        super().load_middleware(is_async=False)

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            response = await sync_to_async(
                self._respond, thread_sensitive=False, executor=_executor
            )(scope, body_file)
            await self.send_response(response, send)
            if response.streaming:
                await sync_to_async(response.close, thread_sensitive=False, executor=_executor)()
        finally:
            body_file.close()

    def _respond(self, scope: dict[str, Any], body_file: IO[bytes]) -> HttpResponseBase:
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            assert error_response is not None
            response: HttpResponseBase = error_response
        else:
            response = self.get_response(request)
            response._handler_class = self.__class__  # type: ignore[attr-defined]
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size
        if not response.streaming:
            # Its content is in memory: close now, in the thread that served it, so the
            # thread's database connection goes back to the pool before the next request.
            response.close()
        return response
