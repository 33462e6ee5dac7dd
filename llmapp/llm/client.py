"""One ``AsyncAnthropic`` client per event loop (and per configuration).

httpx2 connection pools are bound to the loop that first used them, so a client must not be
shared across loops: the ASGI server has one loop, but ``async_to_sync`` (Celery tasks, tests)
runs coroutines in other, short-lived loops. Clients are cached in a ``WeakKeyDictionary`` on
the loop, then by the settings that shape them, so ``override_settings`` in tests gets a client
of its own while streams already running on another keep theirs.
"""

from __future__ import annotations

import asyncio
import threading
import weakref

import httpx2
from anthropic import AsyncAnthropic, DefaultAioHttpClient
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# The fake server accepts any key; the real API rejects this one with a clear 401.
PLACEHOLDER_API_KEY = "fake-key"

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple, AsyncAnthropic]] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()


# LLM_HTTP_TRANSPORT: the SDK's own HTTP clients; both map their errors to the same SDK errors.
# httpx (default) sets TCP keepalive and bounds DNS and connect by LLM_CONNECT_TIMEOUT_SECONDS;
# aiohttp reads a streamed reply with about 0.7x the CPU (bench/README.md) but does neither.
TRANSPORTS = ("httpx", "aiohttp")


def _config() -> tuple:
    transport = settings.LLM_HTTP_TRANSPORT
    if transport not in TRANSPORTS:
        raise ImproperlyConfigured(
            f"LLM_HTTP_TRANSPORT must be one of {', '.join(TRANSPORTS)}, not {transport!r}"
        )
    return (
        settings.ANTHROPIC_API_KEY or PLACEHOLDER_API_KEY,
        settings.ANTHROPIC_BASE_URL or None,
        float(settings.LLM_CONNECT_TIMEOUT_SECONDS),
        float(settings.LLM_TOTAL_TIMEOUT_SECONDS),
        int(settings.LLM_MAX_RETRIES),
        transport,
    )


def get_client() -> AsyncAnthropic:
    """The client for the running loop (must be called from async code)."""
    loop = asyncio.get_running_loop()
    config = _config()
    with _lock:
        by_config = _clients.setdefault(loop, {})
        if config in by_config:
            return by_config[config]
        api_key, base_url, connect, total, retries, transport = config
        # Read timeout as a backstop only: first-token and total deadlines are enforced by the
        # stream itself (llmapp.llm.streaming), which maps them to model_timeout.
        timeout = httpx2.Timeout(total, connect=connect)
        client = AsyncAnthropic(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=retries,
            # httpx: the SDK's own client (None), exactly as the SDK configures and closes it.
            http_client=DefaultAioHttpClient(timeout=timeout) if transport == "aiohttp" else None,
        )
        by_config[config] = client
        return client


async def close_client() -> None:
    """Close and forget the running loop's clients (call before a private loop ends)."""
    loop = asyncio.get_running_loop()
    with _lock:
        by_config = _clients.pop(loop, {})
    for client in by_config.values():
        await client.close()
