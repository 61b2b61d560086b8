"""uvicorn's httptools protocol, sending a response's head and body in one write.

uvicorn writes the status line and headers to the socket when the application sends
``http.response.start``, and the body when it sends ``http.response.body``: two ``send``
system calls per response, each of which on loopback also runs the receiver's side of TCP
and wakes it, with the interpreter lock held (uvloop does not release it to write). That was
the largest single cost on the event loop thread under ``bench/commands.py`` (ADR 0021).
Here the head is held until the body's first write and goes out with it; the bytes on the
wire, and their order, are the same.

``http="infra.server.http:HttpToolsProtocol"`` (``infra/server/launcher.py``) selects it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http import httptools_impl


class HttpToolsProtocol(httptools_impl.HttpToolsProtocol):
    def _start_asgi_task(self, cycle: httptools_impl.RequestResponseCycle, app: Any) -> None:
        method = cycle.scope["method"]
        cycle.transport = HeadWithBody(cycle.transport, method)  # type: ignore[assignment]
        super()._start_asgi_task(cycle, app)


# What uvicorn writes for ``Expect: 100-continue`` before the response starts.
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class HeadWithBody:
    """One request's view of the connection's transport. Before the response, uvicorn writes
    at most the ``100 Continue`` line; the first other write is the response's status line
    and headers (``RequestResponseCycle.send``), which is held and sent with the next write
    (the body's first bytes). A ``HEAD`` response, whose body is never written, is not
    held; closing sends what is held first (a response the application abandoned after its
    start: the head, then the close, as before). It keeps no reference to the cycle, so
    both are freed as soon as the connection moves on."""

    __slots__ = ("_held", "_holding", "_transport")

    def __init__(self, transport: asyncio.Transport, method: str) -> None:
        self._transport = transport
        self._holding = method != "HEAD"
        self._held: bytes | None = None

    def write(self, data: Any) -> None:
        if self._held is not None:
            data, self._held = self._held + data, None
        elif self._holding and data != _CONTINUE:
            self._holding = False
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
