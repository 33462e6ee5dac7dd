"""SSE streaming against the live ASGI server with a real HTTP client (httpx): deltas arrive
while the model is still producing, events and ids, keep-alives, faults as `error` events,
stop over REST mid-stream, and a client that goes away (the reply is still stored whole)."""

import asyncio
import time

import httpx
import pytest
from asgiref.sync import sync_to_async

from conversations.models import Conversation, Message
from tests.conversations.conftest import SSEStream, auth, new_conversation, sse_post, sse_read

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def messages_of(conversation) -> list[Message]:
    return list(Message.objects.filter(conversation=conversation).order_by("seq"))


async def stats(fake) -> dict:
    return await asyncio.to_thread(fake.stats)


def path_of(conversation) -> str:
    return f"/api/v1/conversations/{conversation.pk}/messages"


async def test_deltas_arrive_incrementally_with_increasing_ids(alice, live_asgi_url):
    conversation = await sync_to_async(new_conversation)(alice)
    content = "stream please [[fake:itl-ms=80]] [[fake:tokens=40]]"  # >2 s of deltas
    started = time.monotonic()
    stream = await sse_post(
        live_asgi_url, path_of(conversation), {"content": content, "stream": True}, auth(alice)
    )
    finished = time.monotonic()

    assert stream.status == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.headers["cache-control"] == "no-cache"
    assert stream.headers["x-accel-buffering"] == "no"
    names = [e.event for e in stream.events]
    assert names[0] == "start"
    assert names[-1] == "done"
    assert set(names[1:-1]) == {"delta"}
    assert len(names) - 2 >= 20
    assert [e.id for e in stream.events] == list(range(1, len(stream.events) + 1))

    deltas = stream.named("delta")
    total = finished - started
    assert total > 1.5
    # The first delta was in our hands while the model still had >1 s of tokens to produce.
    assert deltas[0].received_at - started < total - 1.0
    assert deltas[-1].received_at - deltas[0].received_at > 1.0

    user, reply = await messages_of(conversation)
    start, done = stream.events[0].data, stream.events[-1].data
    assert start["conversation_id"] == str(conversation.pk)
    assert start["message_id"] == reply.pk == done["message_id"]
    assert start["request_id"] == stream.headers["x-request-id"]
    assert user.content == content
    assert reply.status == "complete"
    assert reply.content == stream.text
    assert done["stop_reason"] == "end_turn"
    assert done["usage"] == {
        "input_tokens": reply.input_tokens,
        "output_tokens": reply.output_tokens,
        "cache_read_input_tokens": reply.cache_read_input_tokens,
        "cache_creation_input_tokens": reply.cache_creation_input_tokens,
    }
    assert done["usage"]["output_tokens"] == 40
    assert done["latency_ms"] == reply.latency_ms


async def test_accept_header_asks_for_a_stream_and_keepalives_cover_a_slow_start(
    alice, live_asgi_url, settings
):
    settings.CHAT_SSE_KEEPALIVE_SECONDS = 0.2
    conversation = await sync_to_async(new_conversation)(alice)
    stream = await sse_post(
        live_asgi_url,
        path_of(conversation),
        {"content": "slow start [[fake:ttft-ms=1200]] [[fake:tokens=3]]"},
        {**auth(alice), "Accept": "text/event-stream"},
    )
    assert stream.status == 200
    assert stream.comments.count(": keep-alive") >= 3
    assert [e.event for e in stream.events][-1] == "done"


@pytest.mark.parametrize(
    ("directive", "code", "deltas"),
    [
        ("[[fake:status=529]]", "model_overloaded", 0),
        ("[[fake:status=429]]", "model_rate_limited", 0),
        ("[[fake:status=500]]", "model_error", 0),
        ("[[fake:error-after=4]]", "model_overloaded", 4),
        ("[[fake:cut-after=4]]", "model_error", 4),
        ("[[fake:ttft-ms=3000]]", "model_timeout", 0),
    ],
)
async def test_faults_end_the_stream_with_an_error_event(
    alice, live_asgi_url, fast_failures, settings, directive, code, deltas
):
    settings.LLM_FIRST_TOKEN_TIMEOUT_SECONDS = 0.5
    conversation = await sync_to_async(new_conversation)(alice)
    content = f"fault {directive} [[fake:tokens=20]]"
    stream = await sse_post(
        live_asgi_url, path_of(conversation), {"content": content, "stream": True}, auth(alice)
    )
    assert [e.event for e in stream.events] == ["start"] + ["delta"] * deltas + ["error"]
    error = stream.events[-1].data
    assert error["code"] == code
    assert error["retryable"] is True
    assert error["message"]
    user, reply = await messages_of(conversation)
    assert (user.role, user.content) == ("user", content)
    assert (reply.status, reply.error_code, reply.content) == ("failed", code, stream.text)
    assert error["message_id"] == reply.pk


async def test_refusals_before_the_stream_are_plain_json_errors(alice, bob, live_asgi_url):
    conversation = await sync_to_async(new_conversation)(alice)
    body = {"content": "hi", "stream": True}
    foreign = await sse_post(live_asgi_url, path_of(conversation), body, auth(bob))
    assert foreign.status == 404
    assert foreign.body["error"]["code"] == "not_found"
    await sync_to_async(Conversation.objects.filter(pk=conversation.pk).update)(archived=True)
    archived = await sse_post(live_asgi_url, path_of(conversation), body, auth(alice))
    assert archived.status == 409
    assert archived.body["error"]["code"] == "conversation_archived"
    assert await messages_of(conversation) == []


async def test_stop_over_rest_mid_stream_closes_upstream_and_keeps_the_partial_reply(
    alice, live_asgi_url, fake
):
    conversation = await sync_to_async(new_conversation)(alice)
    before = await stats(fake)
    content = "long one [[fake:itl-ms=40]] [[fake:tokens=300]]"  # ~12 s in full
    async with httpx.AsyncClient(base_url=live_asgi_url, timeout=30) as client:
        started = time.monotonic()
        async with client.stream(
            "POST",
            path_of(conversation),
            json={"content": content, "stream": True},
            headers=auth(alice),
        ) as response:
            stream = SSEStream(status=response.status_code, headers=response.headers)
            lines = response.aiter_lines()
            await sse_read(lines, stream, until=lambda _: len(stream.named("delta")) >= 3)
            stop = await client.post(
                f"/api/v1/conversations/{conversation.pk}/stop", headers=auth(alice)
            )
            await sse_read(lines, stream)
    assert stop.status_code == 202
    assert time.monotonic() - started < 6
    done = stream.events[-1]
    assert done.event == "done"
    assert done.data["status"] == "stopped"
    _, reply = await messages_of(conversation)
    assert reply.status == "stopped"
    assert reply.content == stream.text
    assert len(stream.named("delta")) >= 3
    assert reply.output_tokens > 0
    assert reply.cost_usd > 0
    assert done.data["usage"]["output_tokens"] == reply.output_tokens
    after = await stats(fake)
    assert after["client_disconnects"] == before["client_disconnects"] + 1


async def test_a_client_that_goes_away_does_not_lose_the_reply(alice, live_asgi_url, fake):
    conversation = await sync_to_async(new_conversation)(alice)
    before = await stats(fake)
    content = "i will hang up [[fake:itl-ms=30]] [[fake:tokens=30]]"
    stream = await sse_post(
        live_asgi_url,
        path_of(conversation),
        {"content": content, "stream": True},
        auth(alice),
        until=lambda event: event.event == "delta",  # leave after the first delta
    )
    assert stream.named("delta")

    async def reply_stored():
        while True:
            messages = await messages_of(conversation)
            if messages[-1].status != "streaming":
                return messages[-1]
            await asyncio.sleep(0.05)

    reply = await asyncio.wait_for(reply_stored(), timeout=10)
    assert reply.status == "complete"
    assert reply.output_tokens == 30
    assert reply.content.startswith(stream.text)
    after = await stats(fake)
    assert after["client_disconnects"] == before["client_disconnects"]
    assert after["streams_completed"] == before["streams_completed"] + 1
