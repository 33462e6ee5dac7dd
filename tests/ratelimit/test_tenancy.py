"""Tenant separation, per-organisation overrides (admin), the WebSocket error payload, the
metric, and no extra query per request."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from llmapp.errors import ApiError
from tenants.limits import request_admit
from tests.ratelimit.conftest import fake_tenant, metric

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("strict_redis")]


def statuses(client, n: int) -> list[int]:
    return [client.get("/api/v1/me").status_code for _ in range(n)]


def test_one_tenant_exhausting_its_limit_leaves_others_alone(redis_url, limits, alice, bob):
    limits(requests=3)
    assert statuses(alice.client(), 5) == [200, 200, 200, 429, 429]
    # The member shares alice's organisation limit...
    assert statuses(alice.client(admin=False), 1) == [429]
    # ...bob's organisation has its own.
    assert statuses(bob.client(), 4) == [200, 200, 200, 429]


def test_user_limit_is_per_user_within_the_organisation(redis_url, limits, alice):
    limits(requests=100, user_requests=2)
    assert statuses(alice.client(), 3) == [200, 200, 429]
    assert statuses(alice.client(admin=False), 3) == [200, 200, 429]


def test_organisation_overrides_replace_the_defaults(redis_url, limits, alice, bob):
    limits(requests=2, user_requests=0)
    alice.org.rate_limit_requests_per_minute = 4
    alice.org.save()
    bob.org.rate_limit_requests_per_minute = 0  # 0: no limit for bob
    bob.org.save()
    response = alice.client().get("/api/v1/me")
    assert '"org";q=4;w=60' in response["RateLimit-Policy"]
    assert statuses(alice.client(), 4) == [200, 200, 200, 429]
    assert set(statuses(bob.client(), 6)) == {200}


def test_admin_edits_the_override_fields(redis_url, limits, alice, client):
    limits(requests=10)
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456")
    client.force_login(admin)
    url = f"/admin/tenants/organization/{alice.org.pk}/change/"
    html = client.get(url).content.decode()
    assert "Rate limits and budget" in html
    overrides = {
        "rate_limit_requests_per_minute": "2",
        "rate_limit_user_requests_per_minute": "",
        "rate_limit_tokens_per_minute": "5000",
        "rate_limit_max_concurrent_streams": "3",
        "monthly_token_budget": "1000000",
    }
    for name in overrides:
        assert f'name="{name}"' in html
    memberships = list(alice.org.memberships.order_by("pk"))
    keys = list(alice.org.api_keys.order_by("-created_at"))
    data = {"slug": alice.org.slug, "name": alice.org.name, **overrides}
    for prefix, rows in (("memberships", memberships), ("api_keys", keys)):
        data |= {
            f"{prefix}-TOTAL_FORMS": len(rows),
            f"{prefix}-INITIAL_FORMS": len(rows),
            f"{prefix}-MIN_NUM_FORMS": 0,
            f"{prefix}-MAX_NUM_FORMS": 1000,
        }
        for i, row in enumerate(rows):
            data |= {f"{prefix}-{i}-id": row.pk, f"{prefix}-{i}-organization": alice.org.pk}
    for i, membership in enumerate(memberships):
        data |= {
            f"memberships-{i}-user": membership.user_id,
            f"memberships-{i}-role": membership.role,
        }
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    alice.org.refresh_from_db()
    assert alice.org.rate_limit_requests_per_minute == 2
    assert alice.org.rate_limit_user_requests_per_minute is None
    assert alice.org.monthly_token_budget == 1_000_000
    # The next authenticated request uses the new limit (2), not the default (10).
    assert statuses(alice.client(), 3) == [200, 200, 429]


def test_limits_cost_no_database_query(redis_url, limits, alice, settings):
    client = alice.client()
    client.get("/api/v1/me")  # warm-up: last_used_at touch and imports
    limits()
    with CaptureQueriesContext(connection) as unlimited:
        assert client.get("/api/v1/me").status_code == 200
    limits(requests=100, user_requests=100, tokens=100, streams=2, budget=1000)
    with CaptureQueriesContext(connection) as limited:
        response = client.get("/api/v1/me")
    assert response.status_code == 200
    assert "RateLimit" in response
    assert len(limited) == len(unlimited)


async def test_websocket_path_error_carries_retry_after(redis_url, limits):
    """chat.send calls request_admit; the consumer turns the ApiError into chat.error."""
    limits(requests=1, window=30)
    tenant = fake_tenant()
    await request_admit(tenant=tenant)
    with pytest.raises(ApiError) as refused:
        await request_admit(tenant=tenant)
    error = refused.value
    assert error.status_code == 429
    assert error.code == "rate_limited"
    assert error.extra["retry_after"] == 30
    assert error.headers["Retry-After"] == "30"


def test_decisions_metric_is_exported(redis_url, limits, alice, client):
    limits(requests=1)
    allowed, refused = metric("org", "allowed"), metric("org", "refused")
    statuses(alice.client(), 2)
    assert metric("org", "allowed") - allowed == 1
    assert metric("org", "refused") - refused == 1
    text = client.get("/metrics").content.decode()
    assert 'rate_limit_decisions_total{outcome="refused",scope="org"}' in text
