"""Retry-After and the IETF RateLimit fields, checked against the bucket state in Redis, on
admitted and refused responses; a retry at the announced time succeeds."""

import math
import re
import time

import httpx
import pytest

from tenants.ratelimit.policy import org_key

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("strict_redis")]

FIELD = re.compile(r'"(\w+)"((?:;\w+=(?:\d+|"[^"]*"))*)')


def parse(value: str) -> dict[str, dict[str, str]]:
    """A RateLimit / RateLimit-Policy list: {name: {param: value}}."""
    out = {}
    for name, params in FIELD.findall(value):
        out[name] = dict(p.split("=", 1) for p in params.split(";")[1:])
    return out


def redis_now_ms(rclient) -> float:
    sec, usec = rclient.time()
    return sec * 1000 + usec / 1000


def test_fields_on_admitted_responses_follow_the_bucket(redis_url, rclient, limits, alice):
    limits(requests=5, user_requests=3, window=10)
    client = alice.client()
    for i in range(3):
        response = client.get("/api/v1/me")
        assert response.status_code == 200
        policy = parse(response["RateLimit-Policy"])
        assert policy == {"org": {"q": "5", "w": "10"}, "user": {"q": "3", "w": "10"}}
        state = parse(response["RateLimit"])
        assert state["org"]["r"] == str(5 - (i + 1))
        assert state["user"]["r"] == str(3 - (i + 1))
        # t: seconds until the bucket is full again = TAT - now, read from Redis.
        tat = float(rclient.get(org_key(alice.org.pk, "req")))
        expected = (tat - redis_now_ms(rclient)) / 1000
        assert abs(int(state["org"]["t"]) - expected) <= 1
        assert "Retry-After" not in response


def test_refusal_retry_after_is_the_bucket_state_and_a_retry_then_succeeds(
    redis_url, rclient, limits, alice
):
    # 2 per 2 s: one unit every second.
    limits(requests=2, user_requests=0, window=2)
    client = alice.client()
    assert [client.get("/api/v1/me").status_code for _ in range(2)] == [200, 200]
    refused = client.get("/api/v1/me")
    assert refused.status_code == 429
    body = refused.json()["error"]
    assert body["code"] == "rate_limited"
    assert body["request_id"] == refused["X-Request-ID"]
    retry_after = int(refused["Retry-After"])
    assert body["retry_after"] == retry_after
    # The earliest admission is TAT + cost*interval - window: from the bucket, not a window.
    tat = float(rclient.get(org_key(alice.org.pk, "req")))
    exact_s = (tat + 1000 - 2000 - redis_now_ms(rclient)) / 1000
    assert 0 < exact_s <= 1
    assert retry_after == math.ceil(exact_s) or retry_after == math.ceil(exact_s) + 1
    assert parse(refused["RateLimit"])["org"]["r"] == "0"
    assert parse(refused["RateLimit-Policy"])["org"] == {"q": "2", "w": "2"}
    # Too early: still refused, and nothing was consumed by the refusals.
    assert client.get("/api/v1/me").status_code == 429
    time.sleep(retry_after)
    again = client.get("/api/v1/me")
    assert again.status_code == 200
    assert parse(again["RateLimit"])["org"]["r"] == "0"


def test_unlimited_responses_carry_no_fields(limits, alice, anon_client):
    limits()  # every limit off
    response = alice.client().get("/api/v1/me")
    assert response.status_code == 200
    assert "RateLimit" not in response
    # An unauthenticated call is refused by authentication before any limit applies.
    assert "RateLimit" not in anon_client.get("/api/v1/me")


@pytest.mark.django_db(transaction=True)
def test_fields_through_the_asgi_server(redis_url, limits, alice, live_asgi_url):
    """The async middleware stack (uvicorn, llmapp.asgi) adds the fields too."""
    limits(requests=2, user_requests=0, window=60)
    headers = {"Authorization": f"Bearer {alice.admin_key}"}
    with httpx.Client(base_url=live_asgi_url, headers=headers, timeout=10) as http:
        first = http.get("/api/v1/me")
        assert first.status_code == 200
        assert parse(first.headers["RateLimit"])["org"]["r"] == "1"
        http.get("/api/v1/me")
        refused = http.get("/api/v1/me")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 30
    assert parse(refused.headers["RateLimit-Policy"])["org"] == {"q": "2", "w": "60"}
