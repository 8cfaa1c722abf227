"""Abuse limits: token buckets, kept in this process or in Redis.

A bucket holds up to `per_minute` tokens and refills at `per_minute` a
minute; an action takes one. Kept in-process by default (each API process
counts for itself, so N processes allow N times the limit: enough to stop a
script hammering one process, and no service needed for the embedded run).
With HERD_RATE_LIMIT_REDIS_URL set, or a Redis broker, every API process
shares one set of buckets in Redis, updated atomically by a Lua script on
Redis's own clock.

Used by the rate-limit middleware (controlplane/middleware.py).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis

from controlplane.settings import Settings, get_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    name: str
    per_minute: int

    @property
    def rate(self) -> float:
        return self.per_minute / 60.0


class Limiter(Protocol):
    def take(self, key: str, limit: Limit, consume: bool = True) -> float:
        """Take one token from `key`'s bucket (or, with consume=False, only
        look whether one is there). Returns 0 when there was one, else the
        seconds until there will be one (and takes nothing)."""
        ...


class MemoryLimiter:
    # Every bucket refills completely within a minute of its last use, so a
    # bucket untouched that long is a full one, the same as no entry at all.
    FORGET_AFTER_SECONDS = 60.0
    PRUNE_ABOVE = 10_000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, limit: Limit, consume: bool = True) -> float:
        now = self._clock()
        with self._lock:
            if len(self._buckets) > self.PRUNE_ABOVE:
                self._prune(now)
            tokens, since = self._buckets.get((limit.name, key), (limit.per_minute, now))
            tokens = min(limit.per_minute, tokens + (now - since) * limit.rate)
            if tokens < 1:
                self._buckets[(limit.name, key)] = (tokens, now)
                return (1 - tokens) / limit.rate
            if consume:
                tokens -= 1
            if tokens >= limit.per_minute:
                # A full bucket is the default: forget it, so the table holds
                # only addresses seen lately.
                self._buckets.pop((limit.name, key), None)
            else:
                self._buckets[(limit.name, key)] = (tokens, now)
            return 0.0

    def _prune(self, now: float) -> None:
        # Bounds the table when many addresses each leave a partial bucket.
        self._buckets = {
            k: v for k, v in self._buckets.items() if now - v[1] < self.FORGET_AFTER_SECONDS
        }

    def __len__(self) -> int:
        return len(self._buckets)


_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local consume = ARGV[3] == '1'
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'since')
local tokens = tonumber(state[1]) or capacity
local since = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - since) * rate)
local wait = 0
if tokens < 1 then
  wait = (1 - tokens) / rate
elseif consume then
  tokens = tokens - 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'since', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
return tostring(wait)
"""


class RedisLimiter:
    def __init__(self, url: str) -> None:
        self._redis = redis.Redis.from_url(url, socket_timeout=2)
        self._script = self._redis.register_script(_TAKE)

    def take(self, key: str, limit: Limit, consume: bool = True) -> float:
        try:
            wait = self._script(
                keys=[f"herd:ratelimit:{limit.name}:{key}"],
                args=[limit.per_minute, limit.rate, "1" if consume else "0"],
            )
        except redis.RedisError as exc:
            # Open rather than closed: an outage of the limiter's store must
            # not take the API down with it.
            log.warning("rate limit store unavailable, not limiting: %s", type(exc).__name__)
            return 0.0
        return float(wait)


def redis_url_for(settings: Settings) -> str | None:
    if settings.rate_limit_redis_url:
        return settings.rate_limit_redis_url
    broker = settings.broker_url or ""
    return broker if broker.startswith(("redis://", "rediss://")) else None


def limiter(settings: Settings | None = None) -> Limiter:
    """A new limiter: in memory, its buckets are its own (one per
    application, so each test's app starts with full buckets)."""
    url = redis_url_for(settings or get_settings())
    return RedisLimiter(url) if url else MemoryLimiter()


def retry_after(wait: float) -> str:
    """The Retry-After header's value: whole seconds, never 0."""
    return str(max(1, math.ceil(wait)))
