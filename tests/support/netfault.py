"""Network faults for the fault run: TCP proxies on 127.0.0.1 between the system's processes
and a server, which can cut every open connection or blackhole the traffic for a while.

One ``FaultProxy`` runs an asyncio loop in a thread of the test and serves a route per
server (``add``): a listening port that the processes are given instead of the server's,
each connection relayed byte for byte to the route's upstream: a port of 127.0.0.1 or a
Unix socket's path (the embedded PostgreSQL listens on one only).

- ``cut(name)``: every open connection of the route ends at once with a reset (``SO_LINGER``
  0), on both sides: what a firewall's or a load balancer's dropped connection looks like to
  a client and to the server.
- ``partition(name)`` ... ``heal(name)``: nothing moves through the route in either direction
  (the bytes already read are held) and new connections are accepted but not relayed, until
  ``heal``: a partition that TCP rides out (the client's requests hang, then complete), unless
  ``heal(name, cut=True)`` also ends them (the partition outlasted the connections).
- ``slow(name, seconds)``: every chunk the server sends is held that long first (a slow
  server or link; ``slow(name, 0)`` ends it).

The server side is never touched: a partitioned PostgreSQL still sees its sessions open, as
it would across a real partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")
CHUNK = 65536


@dataclass
class _Route:
    upstream: int | str
    server: asyncio.Server | None = None
    flowing: asyncio.Event = field(default_factory=asyncio.Event)
    delay: float = 0.0  # seconds each chunk from the server is held (``slow``)
    connections: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter | None]] = field(
        default_factory=set
    )


def _reset(writer: asyncio.StreamWriter | None) -> None:
    """Close with a reset (RST), not an orderly FIN: the peer's next read or write fails."""
    if writer is None:
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    """The routes of one run (``add`` before the processes start; ``close`` at the end)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.routes: dict[str, _Route] = {}
        self.counts = Counter[str]()  # connections relayed, cut, partitions, per route
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    # ------------------------------------------------------------------ routes
    def add(self, name: str, upstream: int | str = 0) -> int:
        """A route to ``upstream`` (a port of 127.0.0.1 or a Unix socket's path; may be set
        later with ``set_upstream``); returns the port the processes are to connect to."""
        return self._run(self._add(name, upstream))

    async def _add(self, name: str, upstream: int | str) -> int:
        route = _Route(upstream)
        route.flowing.set()
        route.server = await asyncio.start_server(
            lambda r, w: self._serve(name, route, r, w), "127.0.0.1", 0
        )
        self.routes[name] = route
        return int(route.server.sockets[0].getsockname()[1])

    def set_upstream(self, name: str, upstream: int | str) -> None:
        self.routes[name].upstream = upstream

    def address(self, name: str) -> str:
        assert self.routes[name].server is not None
        port = self.routes[name].server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"127.0.0.1:{port}"

    async def _serve(
        self, name: str, route: _Route, reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:  # fmt: skip
        entry: tuple[asyncio.StreamWriter, asyncio.StreamWriter | None] = (writer, None)
        route.connections.add(entry)
        try:
            await route.flowing.wait()  # a connection opened in a partition waits for the heal
            if entry not in route.connections:  # cut while it waited
                return
            try:
                if isinstance(route.upstream, str):
                    up_reader, up_writer = await asyncio.open_unix_connection(route.upstream)
                else:
                    up_reader, up_writer = await asyncio.open_connection(
                        "127.0.0.1", route.upstream
                    )
            except OSError:  # the server is down: the client sees its connection end
                _reset(writer)
                return
            route.connections.discard(entry)
            entry = (writer, up_writer)
            route.connections.add(entry)
            self.counts[f"{name} connections"] += 1
            await asyncio.gather(
                self._pump(route, reader, up_writer),
                self._pump(route, up_reader, writer, from_server=True),
            )
        finally:
            route.connections.discard(entry)
            for w in entry:
                if w is not None and not w.is_closing():
                    w.close()

    @staticmethod
    async def _pump(
        route: _Route, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
        *, from_server: bool = False,
    ) -> None:  # fmt: skip
        try:
            while data := await reader.read(CHUNK):
                if from_server and route.delay:
                    await asyncio.sleep(route.delay)
                await route.flowing.wait()
                writer.write(data)
                await writer.drain()
            if not writer.is_closing() and writer.can_write_eof():
                writer.write_eof()  # an orderly close goes through as one
        except (OSError, RuntimeError):  # the other side ended, or was cut
            _reset(writer)

    # ------------------------------------------------------------------ faults
    def cut(self, name: str) -> int:
        """End every open connection of the route with a reset; returns how many."""
        return self._run(self._cut(name))

    async def _cut(self, name: str) -> int:
        route = self.routes[name]
        cut = list(route.connections)
        route.connections.clear()
        for client, upstream in cut:
            _reset(client)
            _reset(upstream)
        self.counts[f"{name} connections cut"] += len(cut)
        return len(cut)

    def partition(self, name: str) -> None:
        """Nothing moves through the route until ``heal``."""
        self.counts[f"{name} partitions"] += 1
        self.loop.call_soon_threadsafe(self.routes[name].flowing.clear)

    def heal(self, name: str, *, cut: bool = False) -> int:
        """The route relays again; with ``cut``, its connections end first (returns how many)."""
        ended = self.cut(name) if cut else 0
        self.loop.call_soon_threadsafe(self.routes[name].flowing.set)
        return ended

    def slow(self, name: str, seconds: float) -> None:
        """Hold every chunk the server sends ``seconds`` before relaying it (0: no more)."""
        self.routes[name].delay = seconds

    def close(self) -> None:
        async def stop() -> None:
            for name, route in self.routes.items():
                route.flowing.set()
                if route.server is not None:
                    route.server.close()
                await self._cut(name)

        with contextlib.suppress(Exception):
            self._run(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
