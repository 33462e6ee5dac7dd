"""Where decisions are made: Redis (one Lua script) or this process's memory.

``limiter()`` returns the process-wide ``Limiter`` for the current settings. With ``REDIS_URL``
it runs ``decide.lua`` through a small dedicated connection pool (sync for DRF, which runs views
in threads; ``redis.asyncio`` per event loop for consumers and async views), with tight socket
timeouts. When Redis fails, ``RATE_LIMIT_FAIL_MODE`` decides: ``open`` hands the decision to the
in-memory backend (a warning at most every few seconds, and the ``fail_open`` metric), ``closed``
refuses with 503 ``rate_limiter_unavailable``. After a failure Redis is skipped for
``RATE_LIMIT_REDIS_RETRY_SECONDS`` so that an outage does not cost every request a timeout.
"""

import asyncio
import threading
import time
import weakref
from pathlib import Path

import redis
import redis.asyncio as aredis
import structlog
from django.conf import settings
from django.core.signals import setting_changed
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from llmapp.errors import ServiceUnavailable
from tenants.ratelimit.core import Check, Decision, MemoryBackend, Op, decode_reply, encode_args
from tenants.ratelimit.metrics import count_decision, count_fail_closed

log = structlog.get_logger(__name__)

LUA = (Path(__file__).parent / "decide.lua").read_text()
WARN_EVERY_SECONDS = 10.0

# One per process: the embedded limiter and the fail-open fallback share it, so a fallback
# keeps counting across a change of settings (tests) and across Redis flapping.
memory_backend = MemoryBackend()


class RedisUnavailable(Exception):
    pass


class RedisBackend:
    """decide.lua on Redis. Scripts are registered once (EVALSHA, EVAL again on NOSCRIPT)."""

    def __init__(self, url: str, *, connect_timeout: float, read_timeout: float, pool_size: int):
        self.url = url
        self._pool_kwargs = {
            "max_connections": pool_size,
            # Waiting for a free pooled connection is bounded like any other Redis call.
            "timeout": connect_timeout + read_timeout,
            "socket_connect_timeout": connect_timeout,
            "socket_timeout": read_timeout,
        }
        # redis-py retries failed calls (up to 10 times) by default: one attempt only, so a
        # dead Redis costs one timeout at most.
        self.client = redis.Redis(
            connection_pool=redis.BlockingConnectionPool.from_url(
                url, retry=Retry(NoBackoff(), 0), **self._pool_kwargs
            )
        )
        self.script = self.client.register_script(LUA)
        self._async: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _async_script(self):
        # redis.asyncio connections belong to one event loop; async_to_sync and tests run
        # several loops in one process, so each loop gets its own small pool.
        loop = asyncio.get_running_loop()
        script = self._async.get(loop)
        if script is None:
            pool = aredis.BlockingConnectionPool.from_url(
                self.url, retry=AsyncRetry(NoBackoff(), 0), **self._pool_kwargs
            )
            script = aredis.Redis(connection_pool=pool).register_script(LUA)
            self._async[loop] = script
        return script

    def decide(self, checks: list[Check], op: Op) -> Decision:
        keys, argv = encode_args(op, checks)
        try:
            reply = self.script(keys=keys, args=argv)
        except (redis.RedisError, OSError) as exc:
            raise RedisUnavailable(type(exc).__name__) from exc
        return decode_reply(checks, reply) if op == "admit" else Decision(True, int(reply[1]))

    async def adecide(self, checks: list[Check], op: Op) -> Decision:
        keys, argv = encode_args(op, checks)
        try:
            reply = await self._async_script()(keys=keys, args=argv)
        except (redis.RedisError, OSError) as exc:
            raise RedisUnavailable(type(exc).__name__) from exc
        return decode_reply(checks, reply) if op == "admit" else Decision(True, int(reply[1]))


class Limiter:
    """Runs decisions on Redis when configured, else (or on fail-open) in memory; counts them."""

    def __init__(self, redis_backend: RedisBackend | None, *, fail_mode: str, retry_s: float):
        self.redis = redis_backend
        self.memory = memory_backend
        self.fail_mode = fail_mode
        self.retry_s = retry_s
        self._down_until = 0.0
        self._last_warning = 0.0

    def _redis_usable(self) -> bool:
        return self.redis is not None and time.monotonic() >= self._down_until

    def _on_failure(self, error: str | None) -> None:
        """``error``: Redis just failed (skip it for a while); None: it is being skipped."""
        now = time.monotonic()
        if error is not None:
            self._down_until = now + self.retry_s
        if now - self._last_warning >= WARN_EVERY_SECONDS:
            self._last_warning = now
            log.warning(
                "ratelimit.redis_unavailable",
                error=error or "skipped_while_down",
                fail_mode=self.fail_mode,
            )

    def _fallback(self, checks: list[Check], op: Op) -> Decision:
        if self.fail_mode != "open":
            if op == "admit":
                count_fail_closed(checks)
            raise ServiceUnavailable(
                "The rate limiter is unavailable; try again shortly.",
                code="rate_limiter_unavailable",
                headers={"Retry-After": str(max(1, round(self.retry_s)))},
                extra={"retry_after": max(1, round(self.retry_s))},
            )
        decision = self.memory.decide(checks, op)
        decision.source = "fallback"
        return decision

    def _finish(self, decision: Decision, op: Op) -> Decision:
        if op == "admit":
            count_decision(decision.results, fallback=decision.source == "fallback")
        return decision

    def decide(self, checks: list[Check], op: Op = "admit") -> Decision:
        if self.redis is None:
            return self._finish(self.memory.decide(checks, op), op)
        if self._redis_usable():
            try:
                return self._finish(self.redis.decide(checks, op), op)
            except RedisUnavailable as exc:
                self._on_failure(str(exc))
        else:
            self._on_failure(None)
        return self._finish(self._fallback(checks, op), op)

    async def adecide(self, checks: list[Check], op: Op = "admit") -> Decision:
        if self.redis is None:
            return self._finish(self.memory.decide(checks, op), op)
        if self._redis_usable():
            try:
                return self._finish(await self.redis.adecide(checks, op), op)
            except RedisUnavailable as exc:
                self._on_failure(str(exc))
        else:
            self._on_failure(None)
        return self._finish(self._fallback(checks, op), op)


_lock = threading.Lock()
_current: tuple[tuple, Limiter] | None = None


def _config() -> tuple:
    return (
        settings.REDIS_URL,
        settings.REDIS_CONNECT_TIMEOUT_SECONDS,
        settings.REDIS_READ_TIMEOUT_SECONDS,
        settings.RATE_LIMIT_REDIS_POOL_SIZE,
        settings.RATE_LIMIT_FAIL_MODE,
        settings.RATE_LIMIT_REDIS_RETRY_SECONDS,
    )


def limiter() -> Limiter:
    """The limiter for the current settings (rebuilt when a test overrides them)."""
    global _current
    config = _config()
    current = _current
    if current is not None and current[0] == config:
        return current[1]
    with _lock:
        if _current is None or _current[0] != config:
            url, connect, read, pool, mode, retry = config
            backend = (
                RedisBackend(url, connect_timeout=connect, read_timeout=read, pool_size=pool)
                if url
                else None
            )
            _current = (config, Limiter(backend, fail_mode=mode, retry_s=retry))
        return _current[1]


def _reset_on_setting_change(*, setting, **kwargs) -> None:
    global _current
    if setting.startswith(("REDIS_", "RATE_LIMIT_")):
        _current = None


setting_changed.connect(_reset_on_setting_change)
