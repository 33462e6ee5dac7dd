"""Fixtures of the rate-limit tests: a clean limiter state per test and small limits.

These tests use the real Redis of ``REDIS_URL`` (the Redis tests are skipped without it) and
delete only the limiter's own keys (``RATE_LIMIT_KEY_PREFIX``), never the whole database.
"""

import socket
import threading
import uuid
from types import SimpleNamespace

import pytest
import redis
from django.conf import settings as django_settings
from prometheus_client import REGISTRY

from tenants.models import Membership, Organization
from tenants.ratelimit.backends import memory_backend
from tenants.selectors import TenantContext


def _clear_redis() -> None:
    if not django_settings.REDIS_URL:
        return
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    keys = list(client.scan_iter(match=f"{django_settings.RATE_LIMIT_KEY_PREFIX}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(autouse=True)
def _clean_limiter_state():
    _clear_redis()
    memory_backend.clear()
    yield
    memory_backend.clear()


@pytest.fixture
def redis_url() -> str:
    if not django_settings.REDIS_URL:
        pytest.skip("needs a real Redis: set REDIS_URL")
    return django_settings.REDIS_URL


@pytest.fixture
def strict_redis(settings):
    """For tests about the shared Redis state: a Redis timeout on a loaded machine must fail
    the test (503), not quietly hand decisions to the per-process fallback. Set before
    ``limits`` so a test can still choose its own fail mode."""
    settings.REDIS_READ_TIMEOUT_SECONDS = 5
    # A burst opens a whole pool of connections at once; on a busy machine some connects take
    # longer than the production 0.3 s.
    settings.REDIS_CONNECT_TIMEOUT_SECONDS = 2
    settings.RATE_LIMIT_FAIL_MODE = "closed"


@pytest.fixture
def rclient(redis_url):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def limits(settings):
    """Sets RATE_LIMIT_* settings by short name: ``limits(requests=5, window=2)``."""
    names = {
        "requests": "RATE_LIMIT_REQUESTS_PER_MINUTE",
        "user_requests": "RATE_LIMIT_USER_REQUESTS_PER_MINUTE",
        "tokens": "RATE_LIMIT_TOKENS_PER_MINUTE",
        "streams": "RATE_LIMIT_MAX_CONCURRENT_STREAMS",
        "budget": "RATE_LIMIT_MONTHLY_TOKEN_BUDGET",
        "window": "RATE_LIMIT_WINDOW_SECONDS",
        "lease_ttl": "RATE_LIMIT_LEASE_TTL_SECONDS",
        "fail_mode": "RATE_LIMIT_FAIL_MODE",
    }

    def apply(**values):
        for short, value in values.items():
            setattr(settings, names[short], value)

    # Every limit off unless a test turns it on, so each test sees only what it is about.
    apply(requests=0, user_requests=0, tokens=0, streams=0, budget=0, window=60)
    settings.RATE_LIMIT_ENABLED = True
    return apply


def fake_tenant(**org_fields) -> TenantContext:
    """A tenant that exists only in memory (the limiter reads nothing from the database)."""
    org = Organization(id=uuid.uuid4(), slug=f"t-{uuid.uuid4().hex[:8]}", **org_fields)
    user = SimpleNamespace(pk=1, username="u")
    return TenantContext(organization=org, user=user, membership=Membership(role="member"))


def metric(scope: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "rate_limit_decisions_total", {"scope": scope, "outcome": outcome}
    )
    return value or 0.0


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_port():
    """A port that accepts connections and never answers: only the read timeout ends a call."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(timeout=2)
    for conn in held:
        conn.close()
    server.close()
