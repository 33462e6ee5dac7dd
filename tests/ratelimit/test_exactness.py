"""Exactness on real Redis: with a limit of N and many more concurrent attempts, exactly N pass,
whether the attempts come from threads, async tasks, the API endpoint, or two processes."""

import asyncio
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from llmapp.errors import ApiError
from tenants.limits import request_admit, request_admit_sync
from tests.ratelimit.conftest import fake_tenant

# At 10 per 60 s a unit comes back every 6 s: far longer than any burst below takes.
N = 10

pytestmark = pytest.mark.usefixtures("strict_redis")


def _admit_sync(tenant) -> bool:
    """True when admitted, False when refused with a 429 (anything else propagates)."""
    try:
        request_admit_sync(tenant=tenant)
    except ApiError as exc:
        if exc.status_code != 429:
            raise
        return False
    return True


def test_threads_exactly_n_pass(redis_url, limits):
    limits(requests=N)
    tenant = fake_tenant()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(lambda _: _admit_sync(tenant), range(300)))
    assert time.monotonic() - started < 6
    assert sum(results) == N


async def test_async_tasks_exactly_n_pass(redis_url, limits):
    limits(requests=N, user_requests=N + 5)
    tenant = fake_tenant()

    async def one() -> str | None:
        try:
            await request_admit(tenant=tenant)
        except ApiError as exc:
            return exc.code
        return None

    results = await asyncio.gather(*(one() for _ in range(400)))
    assert results.count(None) == N
    assert results.count("rate_limited") == 400 - N


def test_per_user_limit_exact_and_org_limit_shared(redis_url, limits):
    """The (org, user) limit caps one user; the org limit caps all users together."""
    limits(requests=12, user_requests=5)
    tenant = fake_tenant()
    other_user = type(tenant)(
        organization=tenant.organization,
        user=type(tenant.user)(pk=2, username="v"),
        membership=tenant.membership,
    )
    with ThreadPoolExecutor(max_workers=16) as pool:
        first = list(pool.map(lambda _: _admit_sync(tenant), range(60)))
        second = list(pool.map(lambda _: _admit_sync(other_user), range(60)))
    assert sum(first) == 5
    assert sum(second) == 5
    # A refused request consumed nothing: the org still has 12 - 10 = 2 units for a third user.
    third = type(tenant)(
        organization=tenant.organization,
        user=type(tenant.user)(pk=3, username="w"),
        membership=tenant.membership,
    )
    assert [_admit_sync(third) for _ in range(4)] == [True, True, False, False]


@pytest.mark.django_db(transaction=True)
def test_endpoint_exactly_n_pass_under_concurrency(redis_url, limits, alice):
    """Concurrent GET /api/v1/me through the whole DRF stack: exactly N answer 200, every
    other one 429 with the shared error body."""
    limits(requests=N, user_requests=0)

    def call(_):
        response = alice.client().get("/api/v1/me")
        return response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(call, range(40)))
    statuses = [status for status, _ in results]
    assert statuses.count(200) == N
    assert statuses.count(429) == 40 - N
    refused = next(body for status, body in results if status == 429)
    assert refused["error"]["code"] == "rate_limited"
    assert refused["error"]["retry_after"] >= 1


def test_two_processes_share_the_limit_exactly(redis_url, tmp_path):
    """Two separate Python processes with Django configured on the same Redis fire 150
    concurrent admissions each at the same moment: exactly N pass overall. (N per 600 s here:
    starting two Django processes on a loaded machine takes seconds, and no unit may come back
    while they run; fail-closed with a long read timeout, so a slow Redis cannot fall back.)"""
    org_id = str(uuid.uuid4())
    go = tmp_path / "go"
    worker = Path(__file__).with_name("proc_worker.py")
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "REDIS_READ_TIMEOUT_SECONDS": "5",
        "RATE_LIMIT_FAIL_MODE": "closed",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, str(worker), org_id, str(N), "600", "150", str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            line = proc.stdout.readline().strip()
            assert line == "ready", (line, proc.stderr.read() if proc.poll() is not None else "")
        go.touch()
        outputs = [proc.communicate(timeout=60) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    counts = []
    for out, err in outputs:
        assert out.startswith("admitted="), (out, err[-2000:])
        counts.append(dict(part.split("=") for part in out.split()))
    assert sum(int(c["admitted"]) for c in counts) == N, outputs
    assert sum(int(c["refused"]) for c in counts) == 300 - N, outputs
