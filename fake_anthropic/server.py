"""The aiohttp application: routes, auth, streaming, fault injection and counters."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from fake_anthropic.cache import InputUsage, PromptCache
from fake_anthropic.knobs import Knobs, resolve
from fake_anthropic.replies import Reply, make_reply, split_deltas
from fake_anthropic.tokens import content_text, count_request, count_text
from fake_anthropic.validation import ApiError, validate_messages_body

MAX_BODY_BYTES = 32 * 1024 * 1024
FAIL_FIRST_STATUS = 529


@dataclass
class Config:
    api_key: str | None = None
    defaults: Knobs = field(default_factory=Knobs)
    cache_min_tokens: int = 0


class Stats:
    """Counters served by ``GET /_fake/stats`` and zeroed by ``POST /_fake/reset``."""

    NAMES = (
        "requests",
        "streams_started",
        "streams_completed",
        "client_disconnects",
        "errors_injected",
    )

    def __init__(self) -> None:
        self.active = 0
        self.reset()

    def reset(self) -> None:
        self.counts: Counter[str] = Counter({name: 0 for name in self.NAMES})
        self.by_status: Counter[str] = Counter()
        self.peak_active = self.active

    def stream_opened(self) -> None:
        self.counts["streams_started"] += 1
        self.active += 1
        self.peak_active = max(self.peak_active, self.active)

    def stream_closed(self) -> None:
        self.active -= 1

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.counts,
            "active_streams": self.active,
            "peak_active_streams": self.peak_active,
            "by_status": dict(self.by_status),
        }


STATS = web.AppKey("stats", Stats)
CONFIG = web.AppKey("config", Config)
CACHE = web.AppKey("cache", PromptCache)
FAILS = web.AppKey("fails", Counter)


def _new_id(prefix: str) -> str:
    return prefix + "01" + secrets.token_hex(11)


def _error_body(status: int, kind: str, message: str, request_id: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}


def _error_response(request: web.Request, error: ApiError) -> web.Response:
    headers = {"retry-after": "1"} if error.status == 429 else {}
    body = _error_body(error.status, error.kind, error.message, request["request_id"])
    return web.json_response(body, status=error.status, headers=headers)


@web.middleware
async def _api_errors(request: web.Request, handler):
    request["request_id"] = _new_id("req_")
    try:
        return await handler(request)
    except ApiError as error:
        return _error_response(request, error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        kind = {404: "not_found_error", 405: "invalid_request_error"}.get(exc.status, "api_error")
        return _error_response(request, ApiError(exc.status, exc.reason, kind=kind))


async def _on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["request-id"] = request.get("request_id") or _new_id("req_")
    if request.path.startswith("/v1/") and not request.get("dropped_by_us"):
        request.app[STATS].by_status[str(response.status)] += 1


def _authenticate(request: web.Request) -> None:
    key = request.headers.get("x-api-key", "")
    authorization = request.headers.get("authorization", "")
    if not key and authorization[:7].lower() == "bearer ":
        key = authorization[7:].strip()
    if not key:
        raise ApiError(401, "x-api-key header is required")
    expected = request.app[CONFIG].api_key
    if expected and not secrets.compare_digest(key, expected):
        raise ApiError(401, "invalid x-api-key")
    if not request.headers.get("anthropic-version"):
        raise ApiError(400, "anthropic-version: header is required")


async def _read_json(request: web.Request) -> tuple[bytes, Any]:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise ApiError(413, "Request exceeds the maximum allowed number of bytes.") from exc
    try:
        return raw, json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"There was an issue with your request body: {exc}") from exc


def _last_user_text(messages: list[dict]) -> str:
    last = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    return content_text(last.get("content")) if last else ""


async def count_tokens(request: web.Request) -> web.Response:
    request.app[STATS].counts["requests"] += 1
    _authenticate(request)
    _, body = await _read_json(request)
    validate_messages_body(body, count_tokens=True)
    return web.json_response({"input_tokens": count_request(body.get("system"), body["messages"])})


async def messages(request: web.Request) -> web.StreamResponse:
    app = request.app
    stats = app[STATS]
    stats.counts["requests"] += 1
    _authenticate(request)
    raw, body = await _read_json(request)
    validate_messages_body(body)
    system, msgs = body.get("system"), body["messages"]
    knobs, problems = resolve(
        defaults=app[CONFIG].defaults, headers=request.headers, last_user_text=_last_user_text(msgs)
    )
    if knobs.status is not None and not 400 <= knobs.status <= 599:
        problems.append("fake knob status must be an error status (400-599)")
    if problems:
        raise ApiError(400, "; ".join(problems))
    if knobs.fail_first:
        key = hashlib.sha256(raw).hexdigest()
        if app[FAILS][key] < knobs.fail_first:
            app[FAILS][key] += 1
            stats.counts["errors_injected"] += 1
            raise ApiError(FAIL_FIRST_STATUS)
    if knobs.status is not None:
        stats.counts["errors_injected"] += 1
        error = ApiError(knobs.status)
        raise ApiError(knobs.status, f"{error.message} (injected by fake_anthropic)")
    total = count_request(system, msgs)
    if total > knobs.context_window:
        raise ApiError(400, f"prompt is too long: {total} tokens > {knobs.context_window} maximum")
    usage = app[CACHE].usage(body["model"], system, msgs)
    reply = make_reply(
        model=body["model"],
        system=system,
        messages=msgs,
        max_tokens=body["max_tokens"],
        tokens=knobs.tokens,
        stop_sequences=body.get("stop_sequences"),
    )
    if body.get("stream"):
        return await _stream(request, body["model"], usage, reply, knobs)
    return await _plain(request, body["model"], usage, reply, knobs)


def _usage(usage: InputUsage, output_tokens: int) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "output_tokens": output_tokens,
    }


def _drop_connection(request: web.Request) -> None:
    request["dropped_by_us"] = True
    if request.transport is not None:
        request.transport.close()


async def _plain(
    request: web.Request, model: str, usage: InputUsage, reply: Reply, knobs: Knobs
) -> web.StreamResponse:
    stats = request.app[STATS]
    deltas = split_deltas(reply.text)
    delay = knobs.ttft_ms + knobs.itl_ms * max(len(deltas) - 1, 0) + knobs.stall_ms
    if delay:
        await asyncio.sleep(delay / 1000)
    if knobs.error_after is not None:
        stats.counts["errors_injected"] += 1
        raise ApiError(529)
    if knobs.cut_after is not None or knobs.end_after is not None:
        stats.counts["errors_injected"] += 1
        _drop_connection(request)
        return web.Response()  # never sent: the connection is closed
    return web.json_response(
        {
            "id": _new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": reply.text}],
            "stop_reason": reply.stop_reason,
            "stop_sequence": reply.stop_sequence,
            "usage": _usage(usage, count_text(reply.text)),
        }
    )


def _event(payload: dict[str, Any]) -> bytes:
    data = json.dumps(payload, separators=(",", ":"))
    return f"event: {payload['type']}\ndata: {data}\n\n".encode()


async def _stream(
    request: web.Request, model: str, usage: InputUsage, reply: Reply, knobs: Knobs
) -> web.StreamResponse:
    stats = request.app[STATS]
    response = web.StreamResponse(
        status=200,
        headers={"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"},
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    stats.stream_opened()
    deltas = split_deltas(reply.text)
    try:
        await response.write(
            _event(
                {
                    "type": "message_start",
                    "message": {
                        "id": _new_id("msg_"),
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": _usage(usage, 1),
                    },
                }
            )
            + _event(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                }
            )
            + _event({"type": "ping"})
        )
        if knobs.ttft_ms:
            await asyncio.sleep(knobs.ttft_ms / 1000)
        for i in range(len(deltas) + 1):
            if await _inject_fault(request, response, knobs, sent=i):
                return response
            if i == len(deltas):
                break
            if i and knobs.itl_ms:
                await asyncio.sleep(knobs.itl_ms / 1000)
            await response.write(
                _event(
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": deltas[i]},
                    }
                )
            )
            if i == 0 and knobs.stall_ms:
                await asyncio.sleep(knobs.stall_ms / 1000)
        await response.write(
            _event({"type": "content_block_stop", "index": 0})
            + _event(
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": reply.stop_reason,
                        "stop_sequence": reply.stop_sequence,
                    },
                    "usage": _usage(usage, count_text(reply.text)),
                }
            )
            + _event({"type": "message_stop"})
        )
        await response.write_eof()
        stats.counts["streams_completed"] += 1
        return response
    except (ConnectionError, asyncio.CancelledError):
        if not request.get("dropped_by_us"):
            stats.counts["client_disconnects"] += 1
        raise
    finally:
        stats.stream_closed()


async def _inject_fault(
    request: web.Request, response: web.StreamResponse, knobs: Knobs, *, sent: int
) -> bool:
    """Inject the fault due after ``sent`` deltas, if any. True when the stream is over."""
    stats = request.app[STATS]
    if knobs.error_after == sent:
        stats.counts["errors_injected"] += 1
        error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        await response.write(_event(error))
        await response.write_eof()
        return True
    if knobs.end_after == sent:
        stats.counts["errors_injected"] += 1
        response.force_close()
        await response.write_eof()
        return True
    if knobs.cut_after == sent:
        stats.counts["errors_injected"] += 1
        _drop_connection(request)
        return True
    return False


async def stats_view(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATS].as_dict())


async def reset_view(request: web.Request) -> web.Response:
    """Zero the counters, forget ``fail-first`` counts and empty the prompt cache."""
    request.app[STATS].reset()
    request.app[FAILS].clear()
    request.app[CACHE].clear()
    return web.json_response(request.app[STATS].as_dict())


def create_app(config: Config | None = None) -> web.Application:
    config = config or Config()
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[_api_errors])
    app[CONFIG] = config
    app[STATS] = Stats()
    app[CACHE] = PromptCache(min_tokens=config.cache_min_tokens)
    app[FAILS] = Counter()
    app.on_response_prepare.append(_on_prepare)
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
    app.router.add_get("/_fake/stats", stats_view)
    app.router.add_post("/_fake/reset", reset_view)
    return app


async def serve(
    config: Config, *, host: str, port: int, backlog: int = 4096
) -> tuple[web.AppRunner, int]:
    """Start serving; returns the runner and the bound port (``port=0`` picks a free one)."""
    # handler_cancellation: a client that goes away cancels its handler at once, so a stream
    # sleeping between deltas notices (and counts) the disconnect without waiting to write.
    runner = web.AppRunner(create_app(config), handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=backlog, reuse_address=True)
    await site.start()
    sockets = runner.addresses
    bound = sockets[0][1] if sockets else port
    return runner, bound
