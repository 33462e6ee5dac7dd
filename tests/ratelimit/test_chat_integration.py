"""The limits on the real chat path: REST turns through the live ASGI server to fake_anthropic
(the real SDK over a socket), and WebSocket ``chat.send``. Proves the chat service reserves
before the model call, settles the real usage, and frees its concurrency slot."""

import concurrent.futures
import time

import httpx
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from conversations.models import Message
from conversations.services import conversation_create
from llmapp.asgi import application
from tenants.ratelimit.policy import month_bounds, org_key
from tenants.selectors import TenantContext

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("strict_redis")]


@pytest.fixture(autouse=True)
def _model_is_fake(settings, fake_anthropic_server):
    settings.ANTHROPIC_BASE_URL = fake_anthropic_server.url
    settings.LLM_MAX_RETRIES = 0


def conversation_of(tenant):
    context = TenantContext(
        organization=tenant.org, user=tenant.admin.user, membership=tenant.admin
    )
    return conversation_create(tenant=context)


def send(base_url, tenant, conversation, content) -> httpx.Response:
    return httpx.post(
        f"{base_url}/api/v1/conversations/{conversation.pk}/messages",
        json={"content": content},
        headers={"Authorization": f"Bearer {tenant.admin_key}"},
        timeout=30,
    )


def model_calls(fake) -> int:
    """Generations the fake model started (the chat path always streams from the model)."""
    return fake.stats()["streams_started"]


def test_turn_settles_real_usage_then_budget_refuses_before_the_model(
    redis_url, rclient, limits, alice, live_asgi_url, fake_anthropic_server
):
    limits(budget=100_000, tokens=1_000_000, streams=4)
    conversation = conversation_of(alice)
    first = send(live_asgi_url, alice, conversation, "hello [[fake:tokens=20]]")
    assert first.status_code == 201, first.text
    # The turn's own decision reaches the response's fields, next to the request limits.
    assert '"budget";q=100000' in first.headers["RateLimit-Policy"]
    assert '"concurrency";r=3' in first.headers["RateLimit"]
    usage = first.json()["assistant_message"]["usage"]
    used = sum(
        usage[k]
        for k in (
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
        )
    )
    label, _, _ = month_bounds()
    budget_key = org_key(alice.org.pk, f"budget:{label}")
    # The reservation (estimate + max_tokens) was replaced by the real usage.
    assert int(rclient.get(budget_key)) == used
    assert rclient.zcard(org_key(alice.org.pk, "conc")) == 0  # slot freed

    # Leave less budget than one reservation: the next turn is refused before any model call.
    alice.org.monthly_token_budget = used + 10
    alice.org.save()
    calls = model_calls(fake_anthropic_server)
    refused = send(live_asgi_url, alice, conversation, "again")
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "budget_exceeded"
    assert int(refused.headers["Retry-After"]) >= 1
    assert '"budget"' in refused.headers["RateLimit-Policy"]
    assert model_calls(fake_anthropic_server) == calls
    assert int(rclient.get(budget_key)) == used  # the refusal consumed nothing


def test_concurrent_turns_beyond_the_slots_are_refused(
    redis_url, rclient, limits, alice, live_asgi_url
):
    limits(streams=1)
    slow, other = conversation_of(alice), conversation_of(alice)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(send, live_asgi_url, alice, slow, "slow [[fake:ttft-ms=1500]]")
        deadline = time.monotonic() + 10
        while rclient.zcard(org_key(alice.org.pk, "conc")) == 0:
            assert time.monotonic() < deadline, "the first turn never took its slot"
            time.sleep(0.02)
        refused = send(live_asgi_url, alice, other, "me too")
        assert running.result().status_code == 201
    assert refused.status_code == 429
    body = refused.json()["error"]
    assert body["code"] == "concurrency_limited"
    assert body["retry_after"] == 1
    assert (
        Message.objects.filter(conversation=other, role="assistant", status="complete").count() == 0
    )
    assert rclient.zcard(org_key(alice.org.pk, "conc")) == 0
    assert send(live_asgi_url, alice, other, "now").status_code == 201


async def test_websocket_send_over_the_limit_gets_chat_error_with_retry_after(
    redis_url, limits, alice
):
    limits(requests=1, user_requests=0, window=60)
    conversation = await sync_to_async(conversation_of)(alice)
    comm = WebsocketCommunicator(
        application, "/ws/chat/", headers=[(b"authorization", f"Bearer {alice.admin_key}".encode())]
    )
    connected, _ = await comm.connect(timeout=5)
    assert connected
    send = {"type": "chat.send", "conversation_id": str(conversation.pk), "content": "hi"}
    await comm.send_json_to(send)
    first = []
    while not first or first[-1]["type"] not in ("chat.done", "chat.error"):
        first.append(await comm.receive_json_from(timeout=15))
    assert first[-1]["type"] == "chat.done"
    await comm.send_json_to(send)
    error = await comm.receive_json_from(timeout=5)
    await comm.disconnect()
    assert error["type"] == "chat.error"
    assert error["code"] == "rate_limited"
    assert 55 <= error["retry_after"] <= 60
