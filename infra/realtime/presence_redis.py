"""Presence across server processes: the sockets of every process, counted in Redis.

Keys (all under ``prefix``, by default the channel layer's prefix plus ``presence:``):

- ``proc:<process id>``: hash user id -> sockets this process holds, expiring ``ttl``
  seconds after the process last wrote it. Every ``heartbeat_interval`` the process
  rewrites it from its own count (the truth about its sockets) and renews the expiry, so
  the hash of a process that died (even by SIGKILL) disappears within ``ttl``.
- ``procs``: set of process ids that may have a live hash (dead ones are pruned).
- ``online``: set of users announced connected. A change is announced by whoever moves a
  user into or out of this set, inside a Lua script, so exactly one process announces it.
- ``ver``: hash user id -> version of the user's last change (Redis ``TIME`` in
  microseconds, and always above the previous one), so subscribers can drop changes that
  reach them out of order from different processes.

A user is connected while any live ``proc:*`` hash counts a socket of theirs. The heartbeat
also sweeps: users in ``online`` that no live hash holds any more (their only process died)
are moved out and announced offline, at most ``ttl + heartbeat_interval`` after the death,
by whichever process sweeps first. Users this process holds that are not in ``online`` (its
hash had expired during a long pause, or Redis restarted empty) are announced again.

The scripts read ``proc:*`` keys they compute themselves, which a standalone Redis (the one
the channel layer uses) allows; a Redis Cluster would need them in one hash slot.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections import Counter
from typing import Any

import redis.asyncio as aioredis

from infra.realtime.ports import PresenceChange, PresenceView

_HELPERS = """
local function bump(ver, user)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local v = math.max(now, (tonumber(redis.call('HGET', ver, user)) or 0) + 1)
  redis.call('HSET', ver, user, string.format('%d', v))
  return v
end
local function held(prefix, procs, user, skip)
  for _, id in ipairs(procs) do
    if id ~= skip then
      local n = tonumber(redis.call('HGET', prefix .. 'proc:' .. id, user)) or 0
      if n > 0 then return true end
    end
  end
  return false
end
"""

# KEYS: procs, online, ver, own hash. ARGV: process id, user, sockets here now, ttl ms.
_CONNECT = (
    _HELPERS
    + """
redis.call('HSET', KEYS[4], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[4], ARGV[4])
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('SADD', KEYS[2], ARGV[2]) == 1 then return bump(KEYS[3], ARGV[2]) end
return 0
"""
)

# KEYS: procs, online, ver, own hash. ARGV: process id, user, sockets here now, ttl ms, prefix.
_DISCONNECT = (
    _HELPERS
    + """
if tonumber(ARGV[3]) > 0 then
  redis.call('HSET', KEYS[4], ARGV[2], ARGV[3])
  redis.call('PEXPIRE', KEYS[4], ARGV[4])
  return 0
end
redis.call('HDEL', KEYS[4], ARGV[2])
redis.call('PEXPIRE', KEYS[4], ARGV[4])
if held(ARGV[5], redis.call('SMEMBERS', KEYS[1]), ARGV[2], ARGV[1]) then return 0 end
if redis.call('SREM', KEYS[2], ARGV[2]) == 1 then return bump(KEYS[3], ARGV[2]) end
return 0
"""
)

# KEYS: procs, online, ver, own hash. ARGV: process id, ttl ms, prefix, then user, sockets...
# Returns user, 1|0 (connected), version, ... for every change nobody announced.
_HEARTBEAT = (
    _HELPERS
    + """
local prefix = ARGV[3]
redis.call('DEL', KEYS[4])
local mine = {}
for i = 4, #ARGV, 2 do
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1])
  mine[#mine + 1] = ARGV[i]
end
if #mine > 0 then
  redis.call('PEXPIRE', KEYS[4], ARGV[2])
  redis.call('SADD', KEYS[1], ARGV[1])
end
local live = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', prefix .. 'proc:' .. id) == 1 then
    live[#live + 1] = id
  else
    redis.call('SREM', KEYS[1], id)
  end
end
local changes = {}
for _, user in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if not held(prefix, live, user, nil) then
    redis.call('SREM', KEYS[2], user)
    changes[#changes + 1] = user
    changes[#changes + 1] = 0
    changes[#changes + 1] = bump(KEYS[3], user)
  end
end
for _, user in ipairs(mine) do
  if redis.call('SADD', KEYS[2], user) == 1 then
    changes[#changes + 1] = user
    changes[#changes + 1] = 1
    changes[#changes + 1] = bump(KEYS[3], user)
  end
end
return changes
"""
)

# KEYS: procs, ver. ARGV: prefix. Returns {user, sockets, ...} over live hashes, {user, ver...}.
_VIEW = """
local totals = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local row = redis.call('HGETALL', ARGV[1] .. 'proc:' .. id)
  for i = 1, #row, 2 do
    totals[row[i]] = (totals[row[i]] or 0) + tonumber(row[i + 1])
  end
end
local flat = {}
for user, n in pairs(totals) do
  if n > 0 then
    flat[#flat + 1] = user
    flat[#flat + 1] = n
  end
end
return {flat, redis.call('HGETALL', KEYS[2])}
"""

# KEYS: procs. ARGV: prefix, user.
_SOCKETS = """
local n = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  n = n + (tonumber(redis.call('HGET', ARGV[1] .. 'proc:' .. id, ARGV[2])) or 0)
end
return n
"""


class RedisPresenceStore:
    """Sockets of every server process sharing one Redis; see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        ttl: float = 20.0,
        heartbeat_interval: float = 5.0,
        process_id: str | None = None,
    ) -> None:
        if heartbeat_interval >= ttl:
            raise ValueError("the presence heartbeat must come more often than the TTL")
        self.url = url
        self.prefix = prefix
        self.ttl_ms = max(1, int(ttl * 1000))
        self._heartbeat_interval = heartbeat_interval
        self._process_id = process_id
        self._sockets: Counter[str] = Counter()  # this process's sockets: the truth here
        self._lock = asyncio.Lock()  # local count and Redis change together, in order
        self._client: aioredis.Redis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the client's connections live here
        self._scripts: dict[str, Any] = {}

    @property
    def heartbeat_interval(self) -> float:
        return self._heartbeat_interval

    @property
    def process_id(self) -> str:
        # Chosen at first use, so a server forked after import still gets its own.
        if self._process_id is None:
            self._process_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        return self._process_id

    def _redis(self) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            # Connections belong to the loop that opened them (a server has one loop; a
            # script or test may run several one after another).
            self._loop = loop
            self._lock = asyncio.Lock()
            self._client = aioredis.Redis.from_url(
                self.url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5
            )
            for name, lua in (
                ("connect", _CONNECT),
                ("disconnect", _DISCONNECT),
                ("heartbeat", _HEARTBEAT),
                ("view", _VIEW),
                ("sockets", _SOCKETS),
            ):
                self._scripts[name] = self._client.register_script(lua)
        return self._client

    def _keys(self) -> list[str]:
        p = self.prefix
        return [f"{p}procs", f"{p}online", f"{p}ver", f"{p}proc:{self.process_id}"]

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return await self._scripts[name](keys=keys, args=args)

    async def connect(self, user_id: str) -> PresenceChange | None:
        self._redis()
        async with self._lock:
            self._sockets[user_id] += 1
            args = [self.process_id, user_id, self._sockets[user_id], self.ttl_ms]
            version = int(await self._run("connect", self._keys(), args))
        return PresenceChange(user_id, True, version) if version else None

    async def disconnect(self, user_id: str) -> PresenceChange | None:
        self._redis()
        async with self._lock:
            if self._sockets[user_id] <= 0:
                self._sockets.pop(user_id, None)
                return None
            self._sockets[user_id] -= 1
            left = self._sockets[user_id]
            if left == 0:
                del self._sockets[user_id]
            args = [self.process_id, user_id, left, self.ttl_ms, self.prefix]
            version = int(await self._run("disconnect", self._keys(), args))
        return PresenceChange(user_id, False, version) if version else None

    async def sockets(self, user_id: str) -> int:
        self._redis()
        return int(await self._run("sockets", [f"{self.prefix}procs"], [self.prefix, user_id]))

    async def view(self) -> PresenceView:
        self._redis()
        flat, versions = await self._run(
            "view", [f"{self.prefix}procs", f"{self.prefix}ver"], [self.prefix]
        )
        return PresenceView(
            {flat[i]: int(flat[i + 1]) for i in range(0, len(flat), 2)},
            {versions[i]: int(versions[i + 1]) for i in range(0, len(versions), 2)},
        )

    async def heartbeat(self) -> list[PresenceChange]:
        self._redis()
        async with self._lock:
            args: list[Any] = [self.process_id, self.ttl_ms, self.prefix]
            for user, n in self._sockets.items():
                if n > 0:
                    args += [user, n]
            flat = await self._run("heartbeat", self._keys(), args)
        return [
            PresenceChange(flat[i], bool(int(flat[i + 1])), int(flat[i + 2]))
            for i in range(0, len(flat), 3)
        ]

    async def close(self) -> None:
        """Stop using Redis (the hash expires by itself; a graceful shutdown has already
        closed every socket, which uncounted them)."""
        if self._client is not None and self._loop is asyncio.get_running_loop():
            await self._client.aclose()
        self._client = None
        self._scripts.clear()
