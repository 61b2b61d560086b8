"""The fan-out counters of one server process, and where they are published (Redis).

``FanoutStats`` counts what this process's sockets got: event frames sent to a socket, and
copies that reached a subscription which already had them (dropped; in normal operation
none: each frame is published once per cluster, ADR 0044). With the push projector's own
counters (``projections.push.PushCounters``: events turned into frames, group messages
published) they are written every few seconds to the hash
``<DESKSTREAM_CHANNELS_PREFIX>push:stats:<process id>`` (expiring after a minute), so the
counters of every process of a cluster can be read and summed: frames published per event
(``published / events`` of the publishing processes) must not grow with the processes.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass

import redis

from projections.push import PushCounters

STATS_TTL = 60  # seconds a process's counters stay after its last report


@dataclass
class FanoutStats:
    delivered: int = 0  # event frames sent to this process's sockets
    duplicates: int = 0  # copies dropped by a subscription that had them already


def process_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class RedisFanoutReport:
    """Writes one process's counters to Redis (synchronous: a thread calls it)."""

    def __init__(self, url: str, prefix: str, pid: str | None = None) -> None:
        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.key = f"{prefix}push:stats:{pid or process_id()}"

    def report(self, counters: PushCounters, stats: FanoutStats, *, mode: str) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.hset(
            self.key,
            mapping={
                "events": counters.events,
                "published": counters.published,
                "delivered": stats.delivered,
                "duplicates": stats.duplicates,
                "publishing": int(counters.publishing),
                "mode": mode,
            },
        )
        pipe.expire(self.key, STATS_TTL)
        pipe.execute()

    def close(self) -> None:
        self._redis.close()


def read_fanout(url: str, prefix: str) -> dict[str, dict[str, str]]:
    """Every live process's counters under ``prefix`` (tests, the benchmark)."""
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        found: dict[str, dict[str, str]] = {}
        for key in client.scan_iter(match=f"{prefix}push:stats:*"):
            fields = client.hgetall(key)
            found[str(key).removeprefix(f"{prefix}push:stats:")] = {
                str(k): str(v) for k, v in fields.items()
            }
        return found
    finally:
        client.close()
