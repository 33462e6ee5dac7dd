"""The in-memory limiter (embedded default, fail-open fallback) is the Lua script's algorithm:
the same sequence of decisions gets the same answers from both."""

import time
import uuid

import pytest

from tenants.ratelimit.backends import limiter, memory_backend
from tenants.ratelimit.core import Check

pytestmark = pytest.mark.usefixtures("strict_redis")


def _sequence(prefix: str) -> list[list[Check]]:
    req = Check("org", "gcra", f"{prefix}:req", 3, 60_000.0)
    user = Check("user", "gcra", f"{prefix}:user:1:req", 2, 60_000.0)
    tok = Check("tokens", "gcra", f"{prefix}:tok", 1000, 60_000.0, 400)
    budget = Check(
        "budget", "budget", f"{prefix}:budget", 1500, time.time() * 1000 + 86_400_000, 400
    )
    steps = [[req, user]] * 4
    steps += [
        [tok, Check("concurrency", "conc", f"{prefix}:conc", 2, 60_000.0, 1, m), budget]
        for m in "abcd"
    ]
    steps += [[tok.with_cost(5000)]]  # above the whole burst: refused until the bucket is full
    return steps


def test_memory_backend_matches_the_lua_script(redis_url):
    org = uuid.uuid4()
    lua = [limiter().decide(step) for step in _sequence(f"rl:{{org:{org}}}")]
    mem = [memory_backend.decide(step) for step in _sequence(f"rl:{{org:{org}}}")]
    assert [d.allowed for d in lua] == [True, True, False, False, True, True, False, False, False]
    for a, b in zip(lua, mem, strict=True):
        assert a.allowed == b.allowed
        for ra, rb in zip(a.results, b.results, strict=True):
            assert (ra.ok, ra.remaining) == (rb.ok, rb.remaining)
            # Both run on a clock; a few ms apart at most.
            assert abs(ra.retry_ms - rb.retry_ms) <= 50
            assert abs(ra.reset_ms - rb.reset_ms) <= 50
