"""The chat WebSocket through the Channels stack (``llmapp.asgi.application``) and over a real
socket: auth, turns, batching, several conversations on one socket, stop, bad messages, and
tenant isolation."""

import asyncio
import json

import pytest
import websockets
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from conversations.models import Message
from llmapp.asgi import application
from llmapp.errors import ApiError
from tests.conversations.conftest import new_conversation

pytestmark = pytest.mark.django_db(transaction=True)


def communicator(tenant=None) -> WebsocketCommunicator:
    headers = [(b"authorization", f"Bearer {tenant.admin_key}".encode())] if tenant else []
    return WebsocketCommunicator(application, "/ws/chat/", headers=headers)


async def connected(tenant) -> WebsocketCommunicator:
    comm = communicator(tenant)
    ok, _ = await comm.connect(timeout=5)
    assert ok
    return comm


async def receive_until(comm, done, limit: float = 15.0) -> list[dict]:
    """Messages received until ``done(message)`` is true (that one included)."""
    messages = []
    async with asyncio.timeout(limit):
        while True:
            message = await comm.receive_json_from(timeout=limit)
            messages.append(message)
            if done(message):
                return messages


def is_end(conversation_id=None):
    def check(message):
        return message["type"] in ("chat.done", "chat.stopped", "chat.error") and (
            conversation_id is None or message.get("conversation_id") == str(conversation_id)
        )

    return check


@sync_to_async
def messages_of(conversation) -> list[Message]:
    return list(Message.objects.filter(conversation=conversation).order_by("seq"))


async def stats(fake) -> dict:
    return await asyncio.to_thread(fake.stats)


async def test_without_credentials_the_socket_is_closed_with_4401(alice):
    for comm in (
        communicator(),
        WebsocketCommunicator(
            application, "/ws/chat/", headers=[(b"authorization", b"Bearer llm_nope")]
        ),
    ):
        ok, code = await comm.connect(timeout=5)
        # Let the refused consumer finish: a consumer left running keeps receiving on the
        # channel layer from this loop, which channels-redis allows from one loop only.
        await comm.disconnect()
        assert (ok, code) == (False, 4401)


async def test_a_turn_streams_batched_deltas_and_stores_the_reply(alice):
    conversation = await sync_to_async(new_conversation)(alice)
    comm = await connected(alice)
    await comm.send_json_to(
        {
            "type": "chat.send",
            "conversation_id": str(conversation.pk),
            "content": "hi [[fake:tokens=200]]",
        }
    )
    messages = await receive_until(comm, is_end())
    await comm.disconnect()

    kinds = [m["type"] for m in messages]
    assert kinds[0] == "chat.start"
    assert kinds[-1] == "chat.done"
    deltas = [m for m in messages if m["type"] == "chat.delta"]
    # 200 upstream deltas arrive back to back: coalesced into far fewer frames.
    assert 1 <= len(deltas) <= 40
    assert [d["seq"] for d in deltas] == list(range(1, len(deltas) + 1))
    user, reply = await messages_of(conversation)
    assert reply.content == "".join(d["text"] for d in deltas)
    done = messages[-1]
    assert done["message_id"] == reply.pk == messages[0]["message_id"]
    assert done["conversation_id"] == str(conversation.pk)
    assert done["usage"]["output_tokens"] == reply.output_tokens == 200
    assert done["stop_reason"] == "end_turn"
    assert user.content == "hi [[fake:tokens=200]]"


async def test_two_conversations_on_one_socket_and_stop_hits_the_right_one(alice, fake):
    first = await sync_to_async(new_conversation)(alice)
    second = await sync_to_async(new_conversation)(alice)
    before = await stats(fake)
    comm = await connected(alice)
    for conversation, tokens in ((first, 300), (second, 40)):
        await comm.send_json_to(
            {
                "type": "chat.send",
                "conversation_id": str(conversation.pk),
                "content": f"go [[fake:itl-ms=30]] [[fake:tokens={tokens}]]",
            }
        )
    # Wait until both have started and the first has sent something, then stop the first.
    seen = await receive_until(
        comm,
        lambda m: m["type"] == "chat.delta" and m["conversation_id"] == str(first.pk),
    )
    await comm.send_json_to({"type": "chat.stop", "conversation_id": str(first.pk)})
    seen += await receive_until(comm, is_end(first.pk))
    seen += (
        await receive_until(comm, is_end(second.pk), limit=20)
        if not any(is_end(second.pk)(m) for m in seen)
        else []
    )
    await comm.disconnect()

    ends = {m["conversation_id"]: m for m in seen if is_end()(m)}
    assert ends[str(first.pk)]["type"] == "chat.stopped"
    assert ends[str(second.pk)]["type"] == "chat.done"
    stopped = (await messages_of(first))[-1]
    complete = (await messages_of(second))[-1]
    assert stopped.status == "stopped"
    assert 0 < stopped.output_tokens < 300
    first_text = "".join(
        m["text"]
        for m in seen
        if m["type"] == "chat.delta" and m["conversation_id"] == str(first.pk)
    )
    assert stopped.content == first_text
    assert complete.status == "complete"
    assert complete.output_tokens == 40
    after = await stats(fake)
    assert after["client_disconnects"] == before["client_disconnects"] + 1


async def test_chat_stop_without_an_id_stops_every_turn_of_the_socket(alice, fake):
    conversation = await sync_to_async(new_conversation)(alice)
    comm = await connected(alice)
    await comm.send_json_to(
        {
            "type": "chat.send",
            "conversation_id": str(conversation.pk),
            "content": "x [[fake:itl-ms=30]] [[fake:tokens=300]]",
        }
    )
    await receive_until(comm, lambda m: m["type"] == "chat.delta")
    await comm.send_json_to({"type": "chat.stop"})
    end = (await receive_until(comm, is_end()))[-1]
    await comm.disconnect()
    assert end["type"] == "chat.stopped"
    assert (await messages_of(conversation))[-1].status == "stopped"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", "malformed_json"),
        ('["chat.send"]', "unknown_type"),
        ('{"type": "chat.dance"}', "unknown_type"),
        ('{"type": "chat.send", "conversation_id": "nope", "content": "x"}', "invalid_request"),
        ('{"type": "chat.send", "conversation_id": "%s", "content": "  "}', "invalid_request"),
        (
            '{"type": "chat.send", "conversation_id": "%s", "content": "x", "extra": 1}',
            "invalid_request",
        ),
        ('{"type": "chat.send", "conversation_id": "%s", "content": "%s"}', "content_too_large"),
        ('{"type": "chat.stop", "conversation_id": "%s"}', "no_turn_in_progress"),
    ],
)
async def test_bad_messages_get_chat_error_and_the_socket_stays_open(alice, settings, raw, code):
    settings.CHAT_MAX_MESSAGE_CHARS = 50
    conversation = await sync_to_async(new_conversation)(alice)
    if raw.count("%s") == 2:
        raw = raw % (conversation.pk, "y" * 51)
    elif "%s" in raw:
        raw = raw % conversation.pk
    comm = await connected(alice)
    await comm.send_to(text_data=raw)
    error = await comm.receive_json_from(timeout=5)
    assert error["type"] == "chat.error"
    assert error["code"] == code
    assert error["message"]
    assert error["retryable"] is False
    # Still open and usable.
    await comm.send_json_to(
        {
            "type": "chat.send",
            "conversation_id": str(conversation.pk),
            "content": "ok [[fake:tokens=3]]",
        }
    )
    assert (await receive_until(comm, is_end()))[-1]["type"] == "chat.done"
    await comm.disconnect()


async def test_bob_cannot_send_to_or_stop_alices_conversation(alice, bob, charlie):
    conversation = await sync_to_async(new_conversation)(alice)
    alice_socket = await connected(alice)
    await alice_socket.send_json_to(
        {
            "type": "chat.send",
            "conversation_id": str(conversation.pk),
            "content": "mine [[fake:itl-ms=20]] [[fake:tokens=60]]",
        }
    )
    await receive_until(alice_socket, lambda m: m["type"] == "chat.start")
    for intruder in (bob, charlie):
        comm = await connected(intruder)
        for message in (
            {"type": "chat.send", "conversation_id": str(conversation.pk), "content": "hi"},
            {"type": "chat.stop", "conversation_id": str(conversation.pk)},
        ):
            await comm.send_json_to(message)
            error = await comm.receive_json_from(timeout=5)
            assert (error["type"], error["code"]) == ("chat.error", "not_found")
        await comm.disconnect()
    end = (await receive_until(alice_socket, is_end()))[-1]
    await alice_socket.disconnect()
    assert end["type"] == "chat.done"  # untouched by the intruders' stop
    assert [m.role for m in await messages_of(conversation)] == ["user", "assistant"]


async def test_rate_limited_send_reports_retry_after(alice, monkeypatch):
    async def refuse(*, tenant):
        raise ApiError("Slow down.", code="rate_limited", status=429, headers={"Retry-After": "7"})

    monkeypatch.setattr("tenants.limits.request_admit", refuse)
    conversation = await sync_to_async(new_conversation)(alice)
    comm = await connected(alice)
    await comm.send_json_to(
        {"type": "chat.send", "conversation_id": str(conversation.pk), "content": "hi"}
    )
    error = await comm.receive_json_from(timeout=5)
    await comm.disconnect()
    assert error["code"] == "rate_limited"
    assert error["retryable"] is True
    assert error["retry_after"] == 7
    assert await messages_of(conversation) == []


async def test_a_real_websocket_client_over_the_live_server(alice, live_asgi_url):
    conversation = await sync_to_async(new_conversation)(alice)
    url = live_asgi_url.replace("http://", "ws://") + "/ws/chat/"
    async with websockets.connect(
        url, additional_headers={"Authorization": f"Bearer {alice.admin_key}"}
    ) as socket:
        await socket.send(
            json.dumps(
                {
                    "type": "chat.send",
                    "conversation_id": str(conversation.pk),
                    "content": "over a socket [[fake:itl-ms=10]] [[fake:tokens=30]]",
                }
            )
        )
        received = []
        async with asyncio.timeout(15):
            while not received or received[-1]["type"] not in ("chat.done", "chat.error"):
                received.append(json.loads(await socket.recv()))
    assert received[0]["type"] == "chat.start"
    assert received[-1]["type"] == "chat.done"
    text = "".join(m["text"] for m in received if m["type"] == "chat.delta")
    assert (await messages_of(conversation))[-1].content == text

    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        async with websockets.connect(url):
            pass
    assert refused.value.response.status_code == 403
