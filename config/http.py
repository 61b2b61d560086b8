"""uvicorn's httptools protocol, sending a response's head and body in one write.

uvicorn writes the status line and headers to the socket when the application sends
``http.response.start``, and the body when it sends ``http.response.body``: two ``send``
system calls per response, each of which on loopback also runs the receiver's side of TCP
and wakes it, with the interpreter lock held (uvloop does not release it to write). That was
the largest single cost on the event loop thread under ``bench/commands.py`` (ADR 0021).
Here the head is held until the body's first write and goes out with it; the bytes on the
wire, and their order, are the same.

``http="config.http:HttpToolsProtocol"`` (``config/launcher.py``) selects it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http import httptools_impl


class HttpToolsProtocol(httptools_impl.HttpToolsProtocol):
    def _start_asgi_task(self, cycle: httptools_impl.RequestResponseCycle, app: Any) -> None:
        cycle.transport = HeadWithBody(cycle.transport, cycle)  # type: ignore[assignment]
        super()._start_asgi_task(cycle, app)


class HeadWithBody:
    """One request's view of the connection's transport: the first write after the response
    has started (its status line and headers, ``RequestResponseCycle.send``) is held and
    sent with the next write (the body's first bytes). A ``HEAD`` response, whose body is
    never written, is not held; closing sends what is held first (a response the
    application abandoned after its start: the head, then the close, as before)."""

    __slots__ = ("_cycle", "_held", "_seen_start", "_transport")

    def __init__(self, transport: asyncio.Transport, cycle: httptools_impl.RequestResponseCycle):
        self._transport = transport
        self._cycle = cycle
        self._held: bytes | None = None
        self._seen_start = False

    def write(self, data: Any) -> None:
        if self._held is not None:
            data, self._held = self._held + data, None
        elif not self._seen_start and self._cycle.response_started:
            self._seen_start = True
            if self._cycle.scope["method"] != "HEAD":
                self._held = bytes(data)
                return
        self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def flush(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._transport.write(held)

    def __getattr__(self, name: str) -> Any:  # is_closing(), get_extra_info(), ...
        return getattr(self._transport, name)
