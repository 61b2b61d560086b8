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

The hop itself is ``RequestThreads``, not asgiref's ``sync_to_async`` on a
``ThreadPoolExecutor``: that wrapped each call in two futures (a ``concurrent.futures``
one, with its ``Condition``, chained to an asyncio one), took the executor's idle
semaphore, copied the context variables back afterwards, and ran each request under a
``ThreadSensitiveContext`` none of this code needs; together about a tenth of the web
server's CPU per command (ADR 0020). Here a request is one item on a C-level queue and
one ``call_soon_threadsafe`` back to the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import queue
import threading
from collections.abc import Callable
from typing import IO, Any, TypeVar

from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse, HttpResponseBase
from django.urls import set_script_prefix

# Threads that run requests. Group commit batches the commands that wait at the same time,
# so this bounds its batches too; each thread holds a database connection only while its
# request runs (the pool, DESKSTREAM_DB_POOL_SIZE, bounds those).
REQUEST_THREADS = int(os.environ.get("DESKSTREAM_REQUEST_THREADS", "64"))

T = TypeVar("T")


class RequestThreads:
    """Up to ``size`` threads that run calls for the event loop, each in a copy of the
    caller's context (as ``sync_to_async`` does, so nothing a request sets leaks into the
    next one on that thread). Threads start when a call finds none idle, like
    ``ThreadPoolExecutor``'s; a call waits in the queue while all ``size`` are busy."""

    def __init__(self, size: int, name: str = "request") -> None:
        self._size = size
        self._name = name
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0

    def run(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Call ``fn(*args)`` on one of the threads; the result (or exception) arrives in
        the returned future of the running event loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((loop, future, contextvars.copy_context(), fn, args))
        with self._lock:
            start = self._idle == 0 and self._threads < self._size
            if start:
                self._threads += 1
                self._idle += 1  # counted as idle until it takes its first call
        if start:
            threading.Thread(
                target=self._work, name=f"{self._name}_{self._threads}", daemon=True
            ).start()
        return future

    def _work(self) -> None:
        lock, get = self._lock, self._queue.get
        while True:
            loop, future, context, fn, args = get()
            with lock:
                self._idle -= 1
            try:
                outcome: tuple[Callable[..., None], Any] = (_set_result, context.run(fn, *args))
            except BaseException as exc:
                outcome = (_set_exception, exc)
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile (shutdown)
                loop.call_soon_threadsafe(outcome[0], future, outcome[1])
            del loop, future, context, fn, args, outcome  # hold nothing while idle
            with lock:
                self._idle += 1


def _set_result(future: asyncio.Future[Any], result: Any) -> None:
    if not future.cancelled():
        future.set_result(result)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.cancelled():
        future.set_exception(exc)


_threads = RequestThreads(REQUEST_THREADS)


class SyncChainASGIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        # The synchronous chain: no async adapters between the middleware and the view.
        super().load_middleware(is_async=False)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # Django's own wraps ``handle`` in asgiref's ``ThreadSensitiveContext``, which only
        # ``sync_to_async(thread_sensitive=True)`` calls use; none are made from here.
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        await self.handle(scope, receive, send)

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            response = await _threads.run(self._respond, scope, body_file)
            await self.send_response(response, send)
            if response.streaming:
                await _threads.run(response.close)
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
