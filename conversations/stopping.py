"""Stop signals for turns, across processes.

A running turn joins the channel-layer group ``chat-turn.<conversation id>`` (channels-redis when
Redis is configured, so any process can reach it; in-memory in the embedded single-process
setup). ``POST .../stop`` and ``chat.stop`` publish to that group. A stop that lands in the short
window before the turn has joined its group is not lost: the publisher also leaves a flag in the
cache, and the turn reads it once right after joining.
"""

import asyncio
import contextlib

import structlog
from channels.layers import get_channel_layer
from django.core.cache import cache

log = structlog.get_logger(__name__)

STOP_MESSAGE_TYPE = "turn.stop"
RELEASE_MESSAGE_TYPE = "turn.release"


def stop_group(conversation_id) -> str:
    return f"chat-turn.{conversation_id}"


def _flag_key(turn_id) -> str:
    return f"chat:stop:{turn_id}"


async def stop_publish(*, conversation_id, turn_id, ttl_seconds: int) -> None:
    """Ask the turn ``turn_id`` of the conversation to stop, wherever it runs."""
    with contextlib.suppress(Exception):  # the flag is a fallback; the group message is the signal
        await cache.aset(_flag_key(turn_id), 1, timeout=ttl_seconds)
    layer = get_channel_layer()
    await layer.group_send(
        stop_group(conversation_id), {"type": STOP_MESSAGE_TYPE, "turn_id": str(turn_id)}
    )


class StopListener:
    """Waits for a stop aimed at one turn. Use ``async with``; ``await wait()`` returns on a stop."""

    def __init__(self, *, conversation_id, turn_id) -> None:
        self.group = stop_group(conversation_id)
        self.turn_id = str(turn_id)
        self.layer = get_channel_layer()
        self.channel: str | None = None

    async def __aenter__(self) -> "StopListener":
        try:
            self.channel = await self.layer.new_channel()
            await self.layer.group_add(self.group, self.channel)
        except Exception:  # noqa: BLE001 - a dead channel layer costs the stop, not the turn
            log.warning("chat.stop_listener_unavailable")
            self.channel = None
        return self

    async def __aexit__(self, *exc) -> None:
        if self.channel is not None:
            # Shielded: leaving the group must happen even when the turn itself is cancelled.
            with contextlib.suppress(Exception):
                await asyncio.shield(self.layer.group_discard(self.group, self.channel))

    async def wait(self) -> bool:
        """Wait for a stop aimed at this turn (a flag left before we joined counts): True.
        False once ``release()`` was called.

        Raises ``StopListenerUnavailable`` when stops cannot be received (no channel layer);
        the caller then carries on without remote stops.
        """
        try:
            if await cache.aget(_flag_key(self.turn_id)):
                return True
        except Exception:  # noqa: BLE001 - a dead cache must not break the turn
            log.warning("chat.stop_flag_unreadable")
        if self.channel is None:
            raise StopListenerUnavailable()
        while True:
            message = await self.layer.receive(self.channel)
            if message.get("type") == RELEASE_MESSAGE_TYPE:
                return False
            if message.get("type") == STOP_MESSAGE_TYPE and message.get("turn_id") in (
                None,
                self.turn_id,
            ):
                return True

    async def release(self) -> None:
        """End a pending ``wait()`` by sending it a message rather than cancelling it:
        cancelling a channels-redis ``receive()`` in the middle of its blocking pop can leave
        it stuck (seen with redis-py 8), holding the layer's receive loop forever."""
        if self.channel is not None:
            await self.layer.send(self.channel, {"type": RELEASE_MESSAGE_TYPE})


class StopListenerUnavailable(Exception):
    """The channel layer could not be joined: this turn can only be stopped locally."""
