"""A stop sent by another process reaches the turn: it travels by Redis pub/sub, and a stop
that arrives before the turn is listening is still honoured."""

import concurrent.futures
import os
import subprocess
import sys
import time

import httpx
import pytest
from django.conf import settings

from conversations.models import Conversation, Message
from conversations.stopping import _flag_key
from tests.conversations.conftest import auth, new_conversation, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

PUBLISH = """
import os, redis
client = redis.Redis.from_url(os.environ["REDIS_URL"])
print(client.publish(os.environ["CHANNEL"], os.environ["TURN_ID"]))
"""


def send_slow(live_asgi_url, tenant, conversation):
    return httpx.post(
        f"{live_asgi_url}/api/v1/conversations/{conversation.pk}/messages",
        json={"content": "a long story [[fake:itl-ms=50]] [[fake:tokens=200]]"},
        headers=auth(tenant),
        timeout=30,
    )


def test_a_stop_published_by_another_process_stops_the_turn(alice, live_asgi_url, fake):
    conversation = new_conversation(alice)
    before = fake.stats()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        reply = pool.submit(send_slow, live_asgi_url, alice, conversation)
        wait_for(lambda: fake.stats()["streams_started"] > before["streams_started"])
        time.sleep(0.3)
        turn_id = Conversation.objects.get(pk=conversation.pk).active_turn_id
        assert turn_id is not None
        published = subprocess.run(
            [sys.executable, "-c", PUBLISH],
            env={
                **os.environ,
                "REDIS_URL": settings.REDIS_URL,
                "CHANNEL": f"{settings.CACHE_KEY_PREFIX}:turn-stop",
                "TURN_ID": str(turn_id),
            },
            capture_output=True,
            text=True,
            check=True,
        )
        assert int(published.stdout) >= 1  # at least this process's subscriber heard it
        response = reply.result(timeout=15)
    assert time.monotonic() - started < 6  # the full reply takes about 10 s
    assert response.json()["assistant_message"]["status"] == "stopped"
    assert Message.objects.get(conversation=conversation, seq=2).status == "stopped"
    wait_for(lambda: fake.stats()["client_disconnects"] > before["client_disconnects"])


def test_a_stop_flagged_before_the_turn_listens_is_honoured(
    alice, live_asgi_url, fake, monkeypatch
):
    """The turn's process counts as freshly subscribed (it may have missed a published stop),
    so it reads the flag the stop left in the cache."""
    from conversations import stopping

    monkeypatch.setattr(stopping, "FRESH_SUBSCRIPTION_SECONDS", 10_000.0)
    conversation = new_conversation(alice)
    real_register = stopping.StopHub.register

    def register_after_an_early_stop(hub, turn_id, event):
        from django.core.cache import cache

        cache.set(_flag_key(turn_id), 1, timeout=60)  # as stop_publish does, before listening
        real_register(hub, turn_id, event)

    monkeypatch.setattr(stopping.StopHub, "register", register_after_an_early_stop)
    response = send_slow(live_asgi_url, alice, conversation)
    assert response.status_code == 201
    assert response.json()["assistant_message"]["status"] == "stopped"


async def test_without_redis_a_stop_is_delivered_in_process(settings):
    """The embedded default (no REDIS_URL, one process): stops travel in memory."""
    import asyncio

    from conversations import stopping

    settings.REDIS_URL = ""
    async with stopping.StopListener(conversation_id="c", turn_id="turn-a") as listener:
        waiting = asyncio.create_task(listener.wait())
        await asyncio.sleep(0.01)
        assert not waiting.done()
        await stopping.stop_publish(conversation_id="c", turn_id="turn-b", ttl_seconds=5)
        await asyncio.sleep(0.01)
        assert not waiting.done()  # another turn's stop
        await stopping.stop_publish(conversation_id="c", turn_id="turn-a", ttl_seconds=5)
        assert await asyncio.wait_for(waiting, 1) is True


async def test_a_released_listener_answers_no_stop(settings):
    import asyncio

    from conversations import stopping

    settings.REDIS_URL = ""
    async with stopping.StopListener(conversation_id="c", turn_id="turn-c") as listener:
        waiting = asyncio.create_task(listener.wait())
        await listener.release()
        assert await asyncio.wait_for(waiting, 1) is False
