"""Server CPU per pushed frame, in one process: what delivering a frame to a socket costs
the server, apart from the commands, the log and the network (ADR 0051).

``bench/realtime.py`` measures the whole system; on a shared two-core machine its CPU per
frame is dominated by the commands that make the events. This script keeps only the
delivery: ``--sockets`` real ``StreamConsumer`` instances on the in-memory channel layer
(as ``make run``) subscribed to the queue, each answering through the ``websockets``
sans-I/O protocol that uvicorn frames messages with (``--deflate`` negotiates
permessage-deflate, as browsers do), and ``--events`` frames published as the push
projector publishes them. It prints process CPU per delivered frame. The socket writes
themselves (one ``send`` system call per frame) are not included.

    .venv/bin/python bench/realtime_delivery.py --sockets 200 --events 200 [--deflate]

To compare with an earlier tree: ``cd OLD && PYTHONPATH=OLD .venv/bin/python
/path/to/this/bench/realtime_delivery.py`` (that tree's consumer, without a hub, goes
through the channel layer).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.environ.get("PYTHONPATH") or str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DESKSTREAM_DEBUG", "1")
os.environ.pop("DESKSTREAM_REDIS_URL", None)  # the in-memory layer of make run

import django

django.setup()

from channels.layers import get_channel_layer  # noqa: E402
from websockets.extensions.permessage_deflate import PerMessageDeflate  # noqa: E402
from websockets.protocol import Protocol, Side, State  # noqa: E402

from infra.realtime import publisher  # noqa: E402
from infra.realtime.consumer import StreamConsumer  # noqa: E402
from infra.realtime.ports import Principal, RealtimeServices, RealtimeSettings  # noqa: E402
from infra.realtime.presence import MemoryPresenceStore, PresenceBoard  # noqa: E402
from projections.push import Delivery  # noqa: E402


class Head:
    """The log's head for a live subscription (nothing is replayed)."""

    def head(self) -> int:
        return 0


def services() -> RealtimeServices:
    def authenticate(token: str) -> Principal:
        return Principal("7", "agent", "Ada Lovelace", time.time() + 3600)

    return RealtimeServices(
        authenticate=authenticate,
        source=Head(),  # type: ignore[arg-type]
        log=None,  # type: ignore[arg-type]
        agents=list,
        settings=RealtimeSettings(silence_timeout=600.0),
    )


def deliveries(events: int) -> list[Delivery]:
    out = []
    for p in range(1, events + 1):
        frame = {
            "kind": "status_changed",
            "ticket_id": "26a7004b-1111-2222-3333-444455556666",
            "version": p,
            "position": p,
            "time": "2026-11-26T19:04:10.751465+00:00",
            "data": {
                "from_status": "open",
                "to_status": "resolved",
                "reason": "",
                "actor_id": "2",
                "actor_role": "agent",
            },
        }
        out.append(Delivery("queue", frame, prev=p - 1 if p > 1 else None, floor=0))
    return out


async def run(sockets: int, events: int, deflate: bool) -> tuple[str, float]:
    got = [0] * sockets
    done = asyncio.Event()
    kwargs: dict[str, Any] = {
        "services": services(),
        "presence": PresenceBoard(MemoryPresenceStore()),
    }
    hub = None
    if "hub" in inspect.signature(StreamConsumer.__init__).parameters:
        from infra.realtime.hub import PushHub

        hub = PushHub()
        kwargs["hub"] = hub
    tasks = []
    for i in range(sockets):
        protocol = Protocol(Side.SERVER, state=State.OPEN)
        if deflate:
            protocol.extensions = [PerMessageDeflate(False, False, 15, 15)]
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        inbox.put_nowait({"type": "websocket.connect"})
        subscribe = json.dumps({"type": "subscribe", "stream": "queue"})
        inbox.put_nowait({"type": "websocket.receive", "text": subscribe})

        async def send(message: dict[str, Any], i: int = i, protocol: Protocol = protocol) -> None:
            if message["type"] != "websocket.send":
                return
            protocol.send_text(message["text"].encode())
            protocol.data_to_send()
            if message["text"].startswith('{"type": "event"'):
                got[i] += 1
                if got[i] == events and min(got) >= events:
                    done.set()

        consumer = StreamConsumer(**kwargs)
        scope = {"type": "websocket", "query_string": b"token=bench", "path": "/ws/"}
        tasks.append(asyncio.ensure_future(consumer(scope, inbox.get, send)))
    await asyncio.sleep(2.0)  # connected, authenticated, subscribed
    layer: Any = get_channel_layer()
    batch = deliveries(events)
    cpu = time.process_time()
    for d in batch:  # one event per publish, as at a few hundred commands a second
        if hub is not None:
            hub.deliver([publisher.layer_message(d)])
        else:
            await layer.group_send(d.group, publisher.layer_message(d))
        await asyncio.sleep(0)
    await asyncio.wait_for(done.wait(), 600)
    used = time.process_time() - cpu
    for task in tasks:
        task.cancel()
    return ("hub" if hub is not None else "channel layer"), used / (sockets * events) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sockets", type=int, default=200)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--deflate", action="store_true", help="permessage-deflate per socket")
    args = parser.parse_args()
    path, micros = asyncio.run(run(args.sockets, args.events, args.deflate))
    print(
        f"{path}: {args.sockets} sockets, {args.events} events, deflate "
        f"{'on' if args.deflate else 'off'}: {micros:.1f} µs of CPU per delivered frame"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
