"""Stop signals for turns, across processes.

Each process (each event loop, strictly) keeps ONE subscription to the Redis pub/sub channel
``<CACHE_KEY_PREFIX>:turn-stop`` and a map from the turns it runs to an ``asyncio.Event``.
``POST .../stop`` and ``chat.stop`` publish the turn's id there; every process receives it and
the one running that turn sets its event. A turn therefore costs no Redis round trip to become
stoppable, however many run at once (a subscription per turn serialised every turn of a
process behind one receive loop under load).

A stop can arrive between a turn's claim (which makes it stoppable) and its registration here:
the hub keeps such stops for a minute and a registering turn finds its own. A stop published
before the process's subscription was up is not lost either: the publisher also leaves a flag in
the cache, which a turn reads when its process has subscribed only recently (in the steady state
a turn costs no Redis call at all). Without Redis (the embedded default: one process) the stop
is delivered in-process.
"""

import asyncio
import contextlib
import weakref

import redis.asyncio as aredis
import structlog
from django.conf import settings
from django.core.cache import cache

log = structlog.get_logger(__name__)

SUBSCRIBE_WAIT_SECONDS = 1.0
RECONNECT_DELAY_SECONDS = 1.0
# Stops for turns not (yet) registered are kept this long; far above the claim-to-register gap.
EARLY_STOP_SECONDS = 60.0
# A subscription younger than this may have missed a stop: read the flag as well.
FRESH_SUBSCRIPTION_SECONDS = 10.0


def _channel() -> str:
    return f"{settings.CACHE_KEY_PREFIX}:turn-stop"


def _flag_key(turn_id) -> str:
    return f"chat:stop:{turn_id}"


def _redis_client() -> aredis.Redis:
    return aredis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=settings.REDIS_CONNECT_TIMEOUT_SECONDS,
        socket_timeout=settings.REDIS_READ_TIMEOUT_SECONDS,
    )


class StopHub:
    """The turns of one event loop, and the subscription that delivers their stops."""

    def __init__(self) -> None:
        self.events: dict[str, asyncio.Event] = {}
        self.early: dict[str, float] = {}  # stops for turns not registered yet -> arrival time
        self.subscribed = asyncio.Event()
        self.subscribed_at = 0.0
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if settings.REDIS_URL and self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._listen(), name="chat-stop-subscriber"
            )

    def deliver(self, turn_id: str) -> None:
        event = self.events.get(turn_id)
        if event is not None:
            event.set()
            return
        now = asyncio.get_running_loop().time()
        self.early = {t: at for t, at in self.early.items() if now - at < EARLY_STOP_SECONDS}
        self.early[turn_id] = now

    def register(self, turn_id: str, event: asyncio.Event) -> None:
        self.events[turn_id] = event
        if self.early.pop(turn_id, None) is not None:
            event.set()

    def may_have_missed_stops(self) -> bool:
        if not settings.REDIS_URL:
            return False
        loop_time = asyncio.get_running_loop().time()
        return (
            not self.subscribed.is_set()
            or loop_time - self.subscribed_at < FRESH_SUBSCRIPTION_SECONDS
        )

    async def _listen(self) -> None:
        # A pub/sub connection idles between messages, so it has no read timeout; the loop
        # reconnects after any failure (a stop sent meanwhile is still found by its flag).
        while True:
            client = aredis.Redis.from_url(
                settings.REDIS_URL,
                socket_connect_timeout=settings.REDIS_CONNECT_TIMEOUT_SECONDS,
                # TCP keepalive: a peer that vanished without a reset is noticed and redialled.
                socket_keepalive=True,
            )
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(_channel())
                self.subscribed_at = asyncio.get_running_loop().time()
                self.subscribed.set()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self.deliver(message["data"].decode())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect; never let the loop die
                log.warning("chat.stop_subscriber_lost", error=type(exc).__name__)
            finally:
                self.subscribed.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                    await client.aclose()
            await asyncio.sleep(RECONNECT_DELAY_SECONDS)


_hubs: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StopHub]" = weakref.WeakKeyDictionary()


def _hub() -> StopHub:
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = StopHub()
    hub.start()
    return hub


async def stop_publish(*, conversation_id, turn_id, ttl_seconds: int) -> None:
    """Ask the turn ``turn_id`` to stop, wherever it runs."""
    turn_id = str(turn_id)
    with contextlib.suppress(Exception):  # the flag is the fallback; the message is the signal
        await cache.aset(_flag_key(turn_id), 1, timeout=ttl_seconds)
    if not settings.REDIS_URL:
        for hub in list(_hubs.values()):  # one process: every loop of it
            hub.deliver(turn_id)
        return
    client = _redis_client()
    try:
        await client.publish(_channel(), turn_id)
    finally:
        await client.aclose()


class StopListener:
    """Waits for a stop aimed at one turn. Use ``async with``; ``await wait()`` is True on a
    stop and False once ``release()`` was called."""

    def __init__(self, *, conversation_id, turn_id) -> None:
        self.conversation_id = conversation_id
        self.turn_id = str(turn_id)
        self.event = asyncio.Event()
        self.released = False
        self.hub: StopHub | None = None

    async def __aenter__(self) -> "StopListener":
        self.hub = _hub()
        self.hub.register(self.turn_id, self.event)
        return self

    async def __aexit__(self, *exc) -> None:
        if self.hub is not None:
            self.hub.events.pop(self.turn_id, None)

    async def wait(self) -> bool:
        if self.hub.may_have_missed_stops():
            # A stop published before the subscription was up is only in the flag: read it
            # once the subscription is up (or has had its chance).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.hub.subscribed.wait(), SUBSCRIBE_WAIT_SECONDS)
            try:
                if await cache.aget(_flag_key(self.turn_id)):
                    return True
            except Exception:  # noqa: BLE001 - a dead cache must not break the turn
                log.warning("chat.stop_flag_unreadable")
        await self.event.wait()
        return not self.released

    async def release(self) -> None:
        """End a pending ``wait()`` (False)."""
        self.released = True
        self.event.set()
