"""Decisions per second through the Lua path from one process.

    python -m tenants.ratelimit.bench            # needs REDIS_URL (and Django settings)

``ratelimit_bench()`` runs full request decisions (org and user GCRA keys, as ``request_admit``
makes them, one ``decide.lua`` call each, atomic on its own) for many organisations, two ways:

- ``ratelimit_decisions_per_s`` (the figure): pipelined, ``batch`` EVALSHA calls per round
  trip from one thread: the Lua path's capacity from one process.
- ``async_decisions_per_s``: the app's own async path (``RedisBackend.adecide``), ``concurrency``
  asyncio tasks on one event loop sharing the backend's pool; bounded by redis-py's per-call
  Python cost (hiredis would help) rather than by Redis.

Limits are set high enough that every decision runs the whole script (check and write). The
bench's keys are deleted afterwards.
"""

import asyncio
import os
import time
import uuid


def ratelimit_bench(
    *, decisions: int = 20_000, concurrency: int = 64, batch: int = 100, orgs: int = 200
) -> dict:
    """Run ``decisions`` decisions; returns ``{"ratelimit_decisions_per_s": ..., ...}``."""
    from django.conf import settings

    from tenants.ratelimit.backends import RedisBackend
    from tenants.ratelimit.core import Check, decode_reply, encode_args

    if not settings.REDIS_URL:
        raise RuntimeError("the Lua path needs REDIS_URL")
    backend = RedisBackend(
        settings.REDIS_URL,
        connect_timeout=settings.REDIS_CONNECT_TIMEOUT_SECONDS,
        read_timeout=settings.REDIS_READ_TIMEOUT_SECONDS,
        pool_size=max(settings.RATE_LIMIT_REDIS_POOL_SIZE, concurrency),
    )
    run = uuid.uuid4().hex[:8]
    tenants = [
        [
            Check("org", "gcra", f"rl:{{bench-{run}:{i}}}:req", 10**9, 60_000.0),
            Check("user", "gcra", f"rl:{{bench-{run}:{i}}}:user:1:req", 10**9, 60_000.0),
        ]
        for i in range(orgs)
    ]

    async def worker(offset: int, count: int) -> int:
        allowed = 0
        for n in range(count):
            decision = await backend.adecide(tenants[(offset + n) % orgs], "admit")
            allowed += decision.allowed
        return allowed

    async def main() -> tuple[float, int]:
        await worker(0, concurrency)  # warm the pool and the script cache
        per_task = decisions // concurrency
        started = time.perf_counter()
        allowed = await asyncio.gather(*(worker(i, per_task) for i in range(concurrency)))
        return time.perf_counter() - started, sum(allowed)

    def pipelined() -> tuple[float, int]:
        encoded = [encode_args("admit", checks) for checks in tenants]
        allowed = 0
        started = time.perf_counter()
        for start in range(0, decisions, batch):
            pipe = backend.client.pipeline(transaction=False)
            for n in range(start, min(start + batch, decisions)):
                keys, argv = encoded[n % orgs]
                backend.script(keys=keys, args=argv, client=pipe)
            for n, reply in enumerate(pipe.execute(), start):
                allowed += decode_reply(tenants[n % orgs], reply).allowed
        return time.perf_counter() - started, allowed

    try:
        elapsed, allowed = asyncio.run(main())
        pipe_elapsed, pipe_allowed = pipelined()
    finally:
        keys = list(backend.client.scan_iter(match=f"rl:{{bench-{run}:*", count=1000))
        if keys:
            backend.client.delete(*keys)
        backend.client.close()
    done = (decisions // concurrency) * concurrency
    if allowed != done or pipe_allowed != decisions:
        raise RuntimeError("a bench decision was refused: the limits are too low")
    return {
        "ratelimit_decisions_per_s": round(decisions / pipe_elapsed),
        "pipeline_batch": batch,
        "async_decisions_per_s": round(done / elapsed),
        "async_concurrency": concurrency,
        "decisions": decisions,
    }


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "llmapp.settings")
    import django

    django.setup()
    print(ratelimit_bench())
