"""Redis unavailable: fail open (the in-memory limiter takes over, with a warning and a metric)
or fail closed (503), always within the tight timeouts; and the embedded in-memory default."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from structlog.testing import capture_logs

from llmapp.errors import ApiError
from tenants.limits import request_admit, request_admit_sync, turn_admit
from tenants.ratelimit.backends import RedisBackend, limiter
from tenants.ratelimit.policy import request_checks
from tests.ratelimit.conftest import fake_tenant, metric


def _timed(fn):
    started = time.monotonic()
    try:
        fn()
        return True, time.monotonic() - started, None
    except ApiError as exc:
        return False, time.monotonic() - started, exc


def test_redis_stopped_mid_test_fails_open_to_memory(redis_url, rclient, settings, limits):
    limits(requests=3)
    tenant = fake_tenant()
    request_admit_sync(tenant=tenant)
    assert rclient.exists(f"rl:{{org:{tenant.organization.pk}}}:req")
    fail_open_before = metric("org", "fail_open")
    refused_before = metric("org", "refused")

    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # Redis "stops": nothing listens there
    with capture_logs() as logs:
        outcomes = [_timed(lambda: request_admit_sync(tenant=tenant)) for _ in range(5)]
    # Every call answered well within the timeout, and the limit still holds in this process.
    assert max(elapsed for _, elapsed, _ in outcomes) < 1
    assert [ok for ok, _, _ in outcomes] == [True, True, True, False, False]
    assert outcomes[3][2].code == "rate_limited"
    assert metric("org", "fail_open") - fail_open_before == 3
    assert metric("org", "refused") - refused_before == 2
    warnings = [e for e in logs if e["event"] == "ratelimit.redis_unavailable"]
    assert len(warnings) == 1  # rate-limited: one warning, not one per request
    assert warnings[0]["fail_mode"] == "open"


def test_silent_redis_times_out_and_is_then_skipped(settings, limits, silent_port):
    """A Redis that accepts connections and never answers costs one read timeout, then is
    skipped for RATE_LIMIT_REDIS_RETRY_SECONDS."""
    limits(requests=100)
    settings.REDIS_URL = f"redis://127.0.0.1:{silent_port}/0"
    settings.RATE_LIMIT_REDIS_RETRY_SECONDS = 5
    tenant = fake_tenant()
    ok, elapsed, _ = _timed(lambda: request_admit_sync(tenant=tenant))
    assert ok
    assert 0.3 <= elapsed < 1  # REDIS_READ_TIMEOUT_SECONDS = 0.5 by default
    started = time.monotonic()
    for _ in range(20):
        request_admit_sync(tenant=tenant)
    assert time.monotonic() - started < 0.2


async def test_async_path_fails_open_quickly(settings, limits, closed_port):
    limits(requests=2)
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port}/0"
    tenant = fake_tenant()
    started = time.monotonic()
    await request_admit(tenant=tenant)
    await request_admit(tenant=tenant)
    with pytest.raises(ApiError) as refused:
        await request_admit(tenant=tenant)
    assert refused.value.code == "rate_limited"
    assert time.monotonic() - started < 1


@pytest.mark.django_db
def test_fail_closed_answers_503(redis_url, settings, limits, alice, closed_port):
    limits(requests=100, fail_mode="closed")
    # A first call while Redis is up (it also pays the process's one-off import costs).
    assert alice.client().get("/api/v1/me").status_code == 200
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port}/0"
    before = metric("org", "fail_closed")
    started = time.monotonic()
    response = alice.client().get("/api/v1/me")
    assert time.monotonic() - started < 1
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "rate_limiter_unavailable"
    assert int(response["Retry-After"]) >= 1
    assert metric("org", "fail_closed") - before == 1


async def test_fail_closed_refuses_turns_and_settle_never_raises(
    redis_url, settings, limits, closed_port
):
    limits(streams=2, fail_mode="closed")
    tenant = fake_tenant()
    lease = await turn_admit(tenant=tenant, estimated_tokens=10)  # admitted on Redis
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port}/0"
    started = time.monotonic()
    with pytest.raises(ApiError) as refused:
        await turn_admit(tenant=tenant, estimated_tokens=10)
    assert refused.value.status_code == 503
    assert refused.value.code == "rate_limiter_unavailable"
    await lease.settle(used_tokens=10)  # Redis gone: logged, not raised
    assert lease.settled
    assert time.monotonic() - started < 1


def test_embedded_default_limits_in_memory(settings, limits, rclient):
    """Without REDIS_URL the in-memory limiter applies, exactly, and Redis is not touched."""
    limits(requests=7)
    settings.REDIS_URL = ""
    tenant = fake_tenant()

    def admit(_):
        try:
            request_admit_sync(tenant=tenant)
            return True
        except ApiError:
            return False

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert sum(pool.map(admit, range(100))) == 7
    assert not rclient.exists(f"rl:{{org:{tenant.organization.pk}}}:req")


def test_disabled_admits_everything(redis_url, settings, limits):
    limits(requests=1)
    settings.RATE_LIMIT_ENABLED = False
    tenant = fake_tenant()
    for _ in range(5):
        request_admit_sync(tenant=tenant)


def test_redis_is_retried_after_the_retry_interval(redis_url, settings, limits, closed_port):
    """While Redis is skipped, steady traffic does not extend the skip: the first decision after
    RATE_LIMIT_REDIS_RETRY_SECONDS goes back to Redis."""
    limits(requests=1000)
    settings.RATE_LIMIT_REDIS_RETRY_SECONDS = 0.3
    lim = limiter()
    healthy = lim.redis
    lim.redis = RedisBackend(
        f"redis://127.0.0.1:{closed_port}/0", connect_timeout=0.3, read_timeout=0.5, pool_size=2
    )
    checks = request_checks(fake_tenant())
    failed_at = time.monotonic()
    assert lim.decide(checks).source == "fallback"
    lim.redis = healthy  # Redis is back
    sources = []
    while time.monotonic() - failed_at < 0.6:
        sources.append((time.monotonic() - failed_at, lim.decide(checks).source))
        time.sleep(0.02)
    assert all(source == "fallback" for at, source in sources if at < 0.29)
    assert all(source == "redis" for at, source in sources if at > 0.31)
