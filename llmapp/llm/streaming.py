"""Streaming a reply: ``ReplyStream`` and the helpers built on it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import replace
from decimal import Decimal
from types import TracebackType
from typing import Any, Required, TypedDict, Unpack

import structlog
from anthropic import omit
from django.conf import settings

from llmapp.llm import metrics
from llmapp.llm.client import close_client, get_client
from llmapp.llm.errors import MODEL_ERROR, MODEL_TIMEOUT, LLMError, classify, error_for
from llmapp.llm.pricing import compute_cost
from llmapp.llm.results import ReplyResult, Usage

log = structlog.get_logger(__name__)

OUTCOME_OK = "ok"
OUTCOME_STOPPED = "stopped"

SystemPrompt = str | Iterable[Mapping[str, Any]] | None


def build_system(system: SystemPrompt, *, cache: bool = True) -> list[dict[str, Any]] | None:
    """``system`` as text blocks, ``cache_control`` on the last one when ``cache``.

    Everything up to that block (the prompt, then a summary block after it) is the cached
    prefix, so repeated turns of a conversation bill it as cache reads.
    """
    if system is None:
        return None
    if isinstance(system, str):
        blocks = [{"type": "text", "text": system}] if system.strip() else []
    else:
        blocks = [dict(block) for block in system]
    if not blocks:
        return None
    if cache and not any("cache_control" in block for block in blocks):
        blocks[-1]["cache_control"] = {"type": "ephemeral"}
    return blocks


class ReplyStream:
    """One streamed model call. Use as ``async with open_stream(...) as s: async for d in s``.

    Iterating yields text deltas as they arrive. When iteration ends normally, ``result`` is the
    ``ReplyResult``. A failure raises ``LLMError`` (also kept in ``error``). Leaving the
    ``async with`` early (``break``, an exception of the caller's, ``asyncio.CancelledError``)
    closes the upstream connection at once and counts the call as ``stopped``;
    ``text_so_far``, ``usage_so_far`` and ``cost_usd_so_far`` still say what was received.
    """

    def __init__(
        self,
        *,
        model: str,
        system: SystemPrompt,
        messages: list[dict[str, Any]],
        max_tokens: int,
        cache_system: bool = True,
        metadata: dict[str, Any] | None = None,
        extra_headers: dict[str, str] | None = None,
        first_token_timeout: float | None = None,
        total_timeout: float | None = None,
    ) -> None:
        self.model = model
        self._params: dict[str, Any] = {
            "model": model,
            "max_tokens": max_tokens,
            "messages": messages,
            "system": build_system(system, cache=cache_system) or omit,
            "metadata": metadata or omit,
            "extra_headers": extra_headers,
        }
        self._first_token_timeout = float(
            first_token_timeout
            if first_token_timeout is not None
            else settings.LLM_FIRST_TOKEN_TIMEOUT_SECONDS
        )
        self._total_timeout = float(
            total_timeout if total_timeout is not None else settings.LLM_TOTAL_TIMEOUT_SECONDS
        )
        self._parts: list[str] = []
        self.usage_so_far = Usage()
        self.stop_reason: str | None = None
        self.request_id: str | None = None
        self.message_id: str | None = None
        self.ttft_ms: int | None = None
        self.result: ReplyResult | None = None
        self.error: LLMError | None = None
        self.outcome: str | None = None
        self._sdk_stream: Any = None
        self._saw_message_stop = False
        self._entered = False
        self._started = 0.0
        self._started_loop = 0.0

    # --- what has arrived so far -------------------------------------------------------
    @property
    def text_so_far(self) -> str:
        return "".join(self._parts)

    @property
    def cost_usd_so_far(self) -> Decimal:
        return compute_cost(self.model, self.usage_so_far)

    # --- context manager and iteration ---------------------------------------------------
    async def __aenter__(self) -> ReplyStream:
        self._entered = True
        self._started = time.perf_counter()
        self._started_loop = asyncio.get_running_loop().time()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.outcome is None:
            # Left before the end: the caller broke out, failed, or was cancelled (stop).
            self._finish(OUTCOME_STOPPED)
        await self._close()

    def __aiter__(self) -> ReplyStream:
        return self

    async def __anext__(self) -> str:
        if not self._entered:
            raise RuntimeError("use ReplyStream inside `async with`")
        if self.outcome is not None:
            raise StopAsyncIteration
        try:
            if self._sdk_stream is None:
                # Clocks start when the request is sent, not when the block was entered.
                self._started = time.perf_counter()
                self._started_loop = asyncio.get_running_loop().time()
                async with asyncio.timeout_at(self._deadline()):
                    await self._open()
            while True:
                async with asyncio.timeout_at(self._deadline()):
                    event = await self._sdk_stream.__anext__()
                text = self._handle(event)
                if text:
                    return text
        except StopAsyncIteration:
            pass
        except Exception as exc:
            await self._fail(exc)
        if not self._saw_message_stop or self.stop_reason is None:
            await self._fail(None)
        self._succeed()
        raise StopAsyncIteration

    # --- internals -------------------------------------------------------------------------
    def _deadline(self) -> float:
        total = self._started_loop + self._total_timeout
        if self.ttft_ms is None:
            return min(total, self._started_loop + self._first_token_timeout)
        return total

    async def _open(self) -> None:
        # The SDK retries the initial request (429, 5xx incl. 529, connection errors) here,
        # before any token exists; once events flow nothing is retried.
        # The raw event stream, not the SDK's ``messages.stream()`` helper: the helper rebuilds
        # a snapshot of the whole message on every event, a third of the SDK's CPU per reply,
        # and ``_handle`` needs none of it.
        self._sdk_stream = await get_client().messages.create(**self._params, stream=True)
        self.request_id = self._sdk_stream.response.headers.get("request-id")

    def _handle(self, event: Any) -> str | None:
        kind = event.type
        if kind == "content_block_delta":
            if event.delta.type == "text_delta" and event.delta.text:
                if self.ttft_ms is None:
                    elapsed = time.perf_counter() - self._started
                    self.ttft_ms = round(elapsed * 1000)
                    metrics.TIME_TO_FIRST_TOKEN.labels(model=self.model).observe(elapsed)
                self._parts.append(event.delta.text)
                return event.delta.text
        elif kind == "message_start":
            self.message_id = event.message.id
            u = event.message.usage
            self.usage_so_far = Usage(
                input_tokens=u.input_tokens or 0,
                output_tokens=u.output_tokens or 0,
                cache_read_input_tokens=u.cache_read_input_tokens or 0,
                cache_creation_input_tokens=u.cache_creation_input_tokens or 0,
            )
        elif kind == "message_delta":
            self.stop_reason = event.delta.stop_reason
            u = event.usage
            changes = {"output_tokens": u.output_tokens}
            for name in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
                if getattr(u, name, None) is not None:
                    changes[name] = getattr(u, name)
            self.usage_so_far = replace(self.usage_so_far, **changes)
        elif kind == "message_stop":
            self._saw_message_stop = True
        return None

    async def _fail(self, exc: BaseException | None) -> None:
        if exc is None:
            code, retryable, detail = MODEL_ERROR, True, "stream ended before message_stop"
        elif isinstance(exc, TimeoutError) and not isinstance(exc, LLMError):
            code, retryable = MODEL_TIMEOUT, True
            detail = "no first token in time" if self.ttft_ms is None else "total time exceeded"
        else:
            code, retryable, detail = classify(exc)
            if detail.startswith("unexpected"):
                log.error("llm.request.unexpected_error", model=self.model, exc_info=exc)
        error = error_for(
            code,
            retryable,
            partial_text=self.text_so_far,
            usage=self.usage_so_far,
            detail=detail,
            request_id=self.request_id or getattr(exc, "request_id", None),
            cost_usd=self.cost_usd_so_far,
        )
        self.error = error
        self._finish(code, detail=detail)
        await self._close()
        raise error from exc

    def _succeed(self) -> None:
        assert self.stop_reason is not None
        self.result = ReplyResult(
            text=self.text_so_far,
            stop_reason=self.stop_reason,
            usage=self.usage_so_far,
            ttft_ms=self.ttft_ms,
            latency_ms=round((time.perf_counter() - self._started) * 1000),
            model=self.model,
            request_id=self.request_id or self.message_id,
            cost_usd=self.cost_usd_so_far,
            message_id=self.message_id,
        )
        self._finish(OUTCOME_OK)

    def _finish(self, outcome: str, *, detail: str | None = None) -> None:
        """Count the call once: metrics and one log line (never the text)."""
        self.outcome = outcome
        elapsed = time.perf_counter() - self._started
        usage = self.usage_so_far
        cost = self.cost_usd_so_far
        model = self.model
        metrics.REQUESTS.labels(model=model, outcome=outcome).inc()
        for kind, value in usage.by_kind():
            if value:
                metrics.TOKENS.labels(model=model, kind=kind).inc(value)
        if cost:
            metrics.COST.labels(model=model).inc(float(cost))
        metrics.REQUEST_DURATION.labels(model=model).observe(elapsed)
        log_method = log.info if outcome in (OUTCOME_OK, OUTCOME_STOPPED) else log.warning
        log_method(
            "llm.request.finished",
            model=model,
            outcome=outcome,
            detail=detail,
            upstream_request_id=self.request_id,
            stop_reason=self.stop_reason,
            ttft_ms=self.ttft_ms,
            latency_ms=round(elapsed * 1000),
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_input_tokens=usage.cache_read_input_tokens,
            cache_creation_input_tokens=usage.cache_creation_input_tokens,
            cost_usd=f"{cost:f}",
        )

    async def _close(self) -> None:
        sdk_stream, self._sdk_stream = self._sdk_stream, None
        if sdk_stream is None:
            return
        try:
            # Closes the HTTP response, and with it the connection if the body is unread.
            await sdk_stream.close()
        except Exception as exc:  # a broken connection must not hide the call's own outcome
            log.warning("llm.stream.close_failed", model=self.model, error=type(exc).__name__)


def open_stream(**request: Unpack[ReplyRequest]) -> ReplyStream:
    """A ``ReplyStream`` for one call; nothing is sent until it is iterated.

    ``first_token_timeout``/``total_timeout`` default to the ``LLM_*_TIMEOUT_SECONDS`` settings.
    """
    return ReplyStream(**request)


class ReplyRequest(TypedDict, total=False):
    """The keyword arguments of ``open_stream``, shared by the helpers built on it."""

    model: Required[str]
    system: Required[SystemPrompt]
    messages: Required[list[dict[str, Any]]]
    max_tokens: Required[int]
    cache_system: bool
    metadata: dict[str, Any] | None
    extra_headers: dict[str, str] | None
    first_token_timeout: float | None
    total_timeout: float | None


async def stream_reply(**request: Unpack[ReplyRequest]) -> AsyncIterator[str | ReplyResult]:
    """Text deltas, then exactly one ``ReplyResult``; raises ``LLMError`` on failure.

    Prefer ``open_stream`` when the caller must learn the partial text and usage of a stopped
    stream (a cancelled generator cannot hand them back).
    """
    async with open_stream(**request) as stream:
        async for delta in stream:
            yield delta
    assert stream.result is not None
    yield stream.result


async def complete(**request: Unpack[ReplyRequest]) -> ReplyResult:
    """The whole reply at once (streamed underneath, so the same timeouts apply)."""
    async with open_stream(**request) as stream:
        async for _ in stream:
            pass
    assert stream.result is not None
    return stream.result


async def _complete_in_private_loop(request: ReplyRequest) -> ReplyResult:
    try:
        return await complete(**request)
    finally:
        await close_client()  # this loop ends with the call; so must its connections


def complete_sync(**request: Unpack[ReplyRequest]) -> ReplyResult:
    """``complete`` for sync code such as Celery tasks: runs it in a fresh event loop, with a
    client of that loop's own, closed before the loop ends.

    Must not be called from a thread that is running an event loop (it would block it).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_complete_in_private_loop(request))
    raise RuntimeError("complete_sync() called from async code; await complete() instead")
