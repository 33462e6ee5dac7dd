"""Token reservation and settlement, the monthly budget and concurrency slots, on real Redis."""

import asyncio
import random
import time

import pytest

from llmapp.errors import ApiError
from tenants.limits import turn_admit, turn_admit_sync
from tenants.ratelimit.policy import month_bounds, org_key
from tests.ratelimit.conftest import fake_tenant

RESERVATION = 300

pytestmark = pytest.mark.usefixtures("strict_redis")


async def _run_turns(tenant, *, attempts: int, extra: int = 0):
    """Concurrent turns: reserve RESERVATION, hold the slot briefly, settle a real usage of at
    most the reservation plus ``extra``. Returns (admitted, refused codes, total used)."""
    used_total = 0
    admitted = 0
    codes = []

    async def turn():
        nonlocal used_total, admitted
        try:
            lease = await turn_admit(tenant=tenant, estimated_tokens=RESERVATION)
        except ApiError as exc:
            codes.append(exc.code)
            return
        admitted += 1
        await asyncio.sleep(random.uniform(0, 0.01))
        used = random.randint(50, RESERVATION + extra)
        used_total += used
        await lease.settle(used_tokens=used)

    await asyncio.gather(*(turn() for _ in range(attempts)))
    return admitted, codes, used_total


async def test_tokens_per_window_overshoot_within_one_reservation(redis_url, limits):
    limits(tokens=3000)
    tenant = fake_tenant()
    # Waves of concurrent turns: refunds of unused reservations let later turns in.
    admitted = used = 0
    codes: list[str] = []
    for _ in range(6):
        a, c, u = await _run_turns(tenant, attempts=40)
        admitted, used = admitted + a, used + u
        codes += c
    assert used <= 3000 + RESERVATION
    # Refunds worked: more turns got in than 3000 / 300 reservations alone would allow.
    assert admitted > 3000 // RESERVATION
    assert set(codes) == {"rate_limited"}


async def test_underestimated_usage_is_charged(redis_url, limits, rclient):
    """Usage above the reservation is charged afterwards (the overshoot of one request), and
    the next turn waits for it."""
    limits(tokens=1000)
    tenant = fake_tenant()
    lease = await turn_admit(tenant=tenant, estimated_tokens=400)
    await lease.settle(used_tokens=1000)
    with pytest.raises(ApiError) as refused:
        await turn_admit(tenant=tenant, estimated_tokens=1)
    assert refused.value.code == "rate_limited"
    # 1000 tokens per 60 s, all charged: one token drips back every 60 ms, so a 1-token turn
    # may retry within a second (not at the end of a fixed window).
    assert refused.value.extra["retry_after"] == 1
    tat = float(rclient.get(org_key(tenant.organization.pk, "tok")))
    sec, usec = rclient.time()
    assert 59_000 < tat - (sec * 1000 + usec / 1000) <= 60_000


async def test_monthly_budget_overshoot_within_one_reservation(redis_url, limits, rclient):
    limits(budget=5000)
    tenant = fake_tenant()
    admitted, codes, used = 0, [], 0
    for _ in range(5):
        a, c, u = await _run_turns(tenant, attempts=40)
        admitted, used = admitted + a, used + u
        codes += c
    assert used <= 5000 + RESERVATION
    assert "budget_exceeded" in codes
    label, _, end_ms = month_bounds()
    counter = int(rclient.get(org_key(tenant.organization.pk, f"budget:{label}")))
    assert counter == used
    with pytest.raises(ApiError) as refused:
        await turn_admit(tenant=tenant, estimated_tokens=5000 - used + 1)
    error = refused.value
    assert error.status_code == 429
    assert error.code == "budget_exceeded"
    # Retry when the calendar month ends.
    assert abs(error.extra["retry_after"] - (end_ms / 1000 - time.time())) <= 2
    assert error.headers["Retry-After"] == str(error.extra["retry_after"])
    assert '"budget";r=' in error.headers["RateLimit"]


async def test_concurrency_slot_freed_by_settle(redis_url, limits):
    limits(streams=2)
    tenant = fake_tenant()
    leases = [await turn_admit(tenant=tenant, estimated_tokens=10) for _ in range(2)]
    with pytest.raises(ApiError) as refused:
        await turn_admit(tenant=tenant, estimated_tokens=10)
    assert refused.value.code == "concurrency_limited"
    assert refused.value.extra["retry_after"] == 1
    assert '"concurrency";q=2;qu="concurrent-requests"' in refused.value.headers["RateLimit-Policy"]
    await leases[0].settle(used_tokens=5)
    await leases[0].settle(used_tokens=5)  # a second settle is a no-op, not a second free slot
    third = await turn_admit(tenant=tenant, estimated_tokens=10)
    with pytest.raises(ApiError):
        await turn_admit(tenant=tenant, estimated_tokens=10)
    await third.settle(used_tokens=0)
    await leases[1].settle(used_tokens=0)


def test_concurrency_slot_freed_after_lease_expiry(redis_url, limits, rclient):
    """A holder that dies never settles: its slot comes back after the lease TTL."""
    limits(streams=1, lease_ttl=1)
    tenant = fake_tenant()
    turn_admit_sync(tenant=tenant, estimated_tokens=10)  # never settled
    with pytest.raises(ApiError) as refused:
        turn_admit_sync(tenant=tenant, estimated_tokens=10)
    assert refused.value.code == "concurrency_limited"
    assert rclient.zcard(org_key(tenant.organization.pk, "conc")) == 1
    time.sleep(1.1)
    lease = turn_admit_sync(tenant=tenant, estimated_tokens=10)
    # The dead lease was pruned by the script, the new one is the only member.
    assert rclient.zcard(org_key(tenant.organization.pk, "conc")) == 1
    lease.settle_sync(used_tokens=10)
    assert rclient.zcard(org_key(tenant.organization.pk, "conc")) == 0


async def test_refused_turn_consumes_nothing(redis_url, limits, rclient):
    """All or nothing: a turn refused for its concurrency slot reserves no tokens or budget."""
    limits(tokens=10_000, streams=1, budget=100_000)
    tenant = fake_tenant()
    holder = await turn_admit(tenant=tenant, estimated_tokens=1000)
    tok_before = rclient.get(org_key(tenant.organization.pk, "tok"))
    label, _, _ = month_bounds()
    budget_key = org_key(tenant.organization.pk, f"budget:{label}")
    for _ in range(5):
        with pytest.raises(ApiError):
            await turn_admit(tenant=tenant, estimated_tokens=1000)
    assert rclient.get(org_key(tenant.organization.pk, "tok")) == tok_before
    assert rclient.get(budget_key) == "1000"
    await holder.settle(used_tokens=600)
    assert rclient.get(budget_key) == "600"
