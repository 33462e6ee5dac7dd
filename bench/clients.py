"""The load generator's clients: the app over HTTP (JSON and SSE) and WebSocket, and the model
reached directly with the SDK (the baseline every figure is compared against).

Every call returns an ``Outcome``: times in seconds from just before the request is sent, and an
error string instead of an exception, so one failed request is counted, never fatal.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import httpx
from anthropic import AsyncAnthropic
from websockets.asyncio.client import connect as ws_connect

MODEL = "claude-sonnet-4-6"  # LLM_DEFAULT_MODEL: what a new conversation uses
MAX_TOKENS = 1024  # LLM_DEFAULT_MAX_TOKENS
# About the size of the seeded default system prompt, so both paths send similar requests.
SYSTEM = (
    "You are a helpful, knowledgeable assistant working for bench. Answer clearly and "
    "accurately. Lead with the answer, then the detail that supports it. When a question is "
    "ambiguous, ask one short clarifying question instead of guessing. If you do not know "
    "something or cannot verify it, say so plainly; never invent facts, sources or figures. Use "
    "Markdown for structure when it helps; keep short answers short. Decline requests that are "
    "harmful or illegal, briefly and politely."
)
TIMEOUT = 120.0


@dataclass
class Outcome:
    total: float = 0.0  # request sent -> last byte / done event
    ttft: float | None = None  # request sent -> first text delta
    error: str | None = None
    deltas: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


class AppClient:
    """The app's REST API with one API key; one connection pool sized for the concurrency."""

    def __init__(self, base_url: str, api_key: str, *, connections: int = 128) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.http = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            timeout=httpx.Timeout(TIMEOUT, connect=30.0, pool=TIMEOUT),
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def conversation_create(self) -> int | str:
        response = await self.http.post("/api/v1/conversations", json={"title": "bench"})
        if response.status_code != 201:
            raise RuntimeError(
                f"creating a conversation answered {response.status_code}: {response.text[:300]}"
            )
        return response.json()["id"]

    async def turn(self, conversation_id, content: str) -> Outcome:
        """A non-streaming turn: 201 with the assistant message, timed to the last byte."""
        started = time.perf_counter()
        try:
            response = await self.http.post(
                f"/api/v1/conversations/{conversation_id}/messages",
                json={"content": content, "stream": False},
            )
            elapsed = time.perf_counter() - started
            if response.status_code != 201:
                return Outcome(
                    elapsed, error=f"status {response.status_code}: {response.text[:150]}"
                )
            reply = response.json()["assistant_message"]
            if reply.get("status") not in (None, "complete", "completed") or not reply.get(
                "content"
            ):
                return Outcome(elapsed, error=f"assistant message {reply.get('status')!r}")
            return Outcome(elapsed)
        except Exception as exc:  # noqa: BLE001 - counted, not raised
            return Outcome(time.perf_counter() - started, error=_error(exc))

    async def sse_turn(self, conversation_id, content: str) -> Outcome:
        """A streaming turn over SSE: time to the first ``delta`` and to ``done``."""
        started = time.perf_counter()
        outcome = Outcome()
        event = ""
        try:
            async with self.http.stream(
                "POST",
                f"/api/v1/conversations/{conversation_id}/messages",
                json={"content": content, "stream": True},
                headers={"Accept": "text/event-stream"},
            ) as response:
                if response.status_code != 200:
                    await response.aread()
                    outcome.error = f"status {response.status_code}: {response.text[:150]}"
                    return outcome
                async for line in response.aiter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        if event == "delta":
                            outcome.deltas += 1
                            if outcome.ttft is None:
                                outcome.ttft = time.perf_counter() - started
                        elif event == "done":
                            outcome.total = time.perf_counter() - started
                            break
                        elif event == "error":
                            outcome.error = f"error event {line[5:].strip()[:150]}"
                            break
                else:
                    outcome.error = "stream ended without done"
        except Exception as exc:  # noqa: BLE001
            outcome.error = _error(exc)
        if not outcome.total:
            outcome.total = time.perf_counter() - started
        if outcome.ok and not outcome.deltas:
            outcome.error = "done without any delta"
        return outcome


class WsChat:
    """One WebSocket session on ``ws/chat/`` authenticated with the API key header."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.url = base_url.replace("http://", "ws://", 1) + "/ws/chat/"
        self.api_key = api_key
        self.ws = None

    async def connect(self) -> None:
        self.ws = await ws_connect(
            self.url,
            additional_headers={"Authorization": f"Bearer {self.api_key}"},
            proxy=None,
            open_timeout=60,
            ping_interval=None,  # the bench holds sessions open briefly; no keepalive noise
            max_size=None,
        )

    async def aclose(self) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def turn(self, conversation_id, content: str) -> Outcome:
        """``chat.send`` and read until ``chat.done``: time to the first ``chat.delta``."""
        outcome = Outcome()
        started = time.perf_counter()
        try:
            await self.ws.send(
                json.dumps(
                    {"type": "chat.send", "conversation_id": conversation_id, "content": content}
                )
            )
            while True:
                message = json.loads(await self.ws.recv())
                kind = message.get("type")
                if kind == "chat.delta":
                    outcome.deltas += 1
                    if outcome.ttft is None:
                        outcome.ttft = time.perf_counter() - started
                elif kind == "chat.done":
                    break
                elif kind in ("chat.error", "chat.stopped"):
                    outcome.error = f"{kind} {json.dumps(message)[:150]}"
                    break
        except Exception as exc:  # noqa: BLE001
            outcome.error = _error(exc)
        outcome.total = time.perf_counter() - started
        if outcome.ok and not outcome.deltas:
            outcome.error = "done without any delta"
        return outcome


class Direct:
    """The same request straight to fake_anthropic with the SDK: the floor the app adds to."""

    def __init__(self, fake_url: str, api_key: str = "fake-key") -> None:
        # max_retries=0: a failed direct call must show as a failure, not as a slow success.
        self.client = AsyncAnthropic(base_url=fake_url, api_key=api_key, max_retries=0)

    async def aclose(self) -> None:
        await self.client.close()

    def _params(self, content: str) -> dict:
        return {
            "model": MODEL,
            "max_tokens": MAX_TOKENS,
            "system": SYSTEM,
            "messages": [{"role": "user", "content": content}],
        }

    async def turn(self, content: str) -> Outcome:
        started = time.perf_counter()
        try:
            message = await self.client.messages.create(**self._params(content))
            if not message.content:
                return Outcome(time.perf_counter() - started, error="empty reply")
            return Outcome(time.perf_counter() - started)
        except Exception as exc:  # noqa: BLE001
            return Outcome(time.perf_counter() - started, error=_error(exc))

    async def stream(self, content: str) -> Outcome:
        outcome = Outcome()
        started = time.perf_counter()
        try:
            # The raw event stream, as the app reads it (the SDK's stream() helper costs more).
            params = self._params(content)
            async with await self.client.messages.create(**params, stream=True) as stream:
                async for event in stream:
                    if event.type != "content_block_delta" or event.delta.type != "text_delta":
                        continue
                    outcome.deltas += 1
                    if outcome.ttft is None and event.delta.text:
                        outcome.ttft = time.perf_counter() - started
        except Exception as exc:  # noqa: BLE001
            outcome.error = _error(exc)
        outcome.total = time.perf_counter() - started
        return outcome
