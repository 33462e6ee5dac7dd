"""Request validation, as strict as the real Messages API where the app could trip over it."""

from __future__ import annotations

from typing import Any

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

ERROR_MESSAGES = {
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit",
    "overloaded_error": "Overloaded",
    "api_error": "Internal server error",
    "timeout_error": "Request timed out",
    "authentication_error": "invalid x-api-key",
    "permission_error": "Your API key does not have permission to use the specified resource.",
}

MAX_CACHE_BREAKPOINTS = 4


def error_type(status: int) -> str:
    if status in ERROR_TYPES:
        return ERROR_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


class ApiError(Exception):
    """An error the server answers with the API's error body."""

    def __init__(self, status: int, message: str | None = None, *, kind: str | None = None):
        self.status = status
        self.kind = kind or error_type(status)
        self.message = message or ERROR_MESSAGES.get(self.kind, f"HTTP {status}")
        super().__init__(self.message)


def _bad(message: str) -> ApiError:
    return ApiError(400, message)


def _check_cache_control(value: Any, where: str, breakpoints: list[int]) -> None:
    if value is None:
        return
    if not isinstance(value, dict) or value.get("type") != "ephemeral":
        raise _bad(f"{where}.cache_control.type: Input should be 'ephemeral'")
    ttl = value.get("ttl", "5m")
    if ttl not in ("5m", "1h"):
        raise _bad(f"{where}.cache_control.ttl: Input should be '5m' or '1h'")
    breakpoints.append(1)
    if len(breakpoints) > MAX_CACHE_BREAKPOINTS:
        raise _bad(
            f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {len(breakpoints)}."
        )


def _check_text_blocks(blocks: Any, where: str, breakpoints: list[int]) -> None:
    if not isinstance(blocks, list):
        raise _bad(f"{where}: Input should be a valid list")
    for i, block in enumerate(blocks):
        here = f"{where}.{i}"
        if not isinstance(block, dict):
            raise _bad(f"{here}: Input should be a valid dictionary or object")
        if block.get("type") != "text":
            raise _bad(f"{here}.type: fake_anthropic supports only 'text' content blocks")
        text = block.get("text")
        if not isinstance(text, str):
            raise _bad(f"{here}.text: Field required")
        if not text.strip():
            raise _bad(f"{here}: text content blocks must contain non-whitespace text")
        _check_cache_control(block.get("cache_control"), here, breakpoints)


def validate_messages_body(body: Any, *, count_tokens: bool = False) -> dict[str, Any]:
    """Check a ``/v1/messages`` (or ``count_tokens``) body; raise ``ApiError`` (400/404)."""
    if not isinstance(body, dict):
        raise _bad("Request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("model: Field required")
    if not count_tokens:
        max_tokens = body.get("max_tokens")
        if max_tokens is None:
            raise _bad("max_tokens: Field required")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
            raise _bad("max_tokens: Input should be a valid integer")
        if max_tokens < 1:
            raise _bad("max_tokens: Input should be greater than or equal to 1")
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise _bad("stream: Input should be a valid boolean")
    breakpoints: list[int] = []
    system = body.get("system")
    if system is not None and not isinstance(system, str):
        _check_text_blocks(system, "system", breakpoints)
    messages = body.get("messages")
    if messages is None:
        raise _bad("messages: Field required")
    if not isinstance(messages, list):
        raise _bad("messages: Input should be a valid list")
    if not messages:
        raise _bad("messages: at least one message is required")
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(message, dict):
            raise _bad(f"{where}: Input should be a valid dictionary or object")
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise _bad(f"{where}.role: Input should be 'user' or 'assistant'")
        expected = "user" if i % 2 == 0 else "assistant"
        if role != expected:
            if i == 0:
                raise _bad('messages: first message must use the "user" role')
            raise _bad('messages: roles must alternate between "user" and "assistant"')
        content = message.get("content")
        if isinstance(content, str):
            if not content.strip():
                raise _bad(f"{where}: text content blocks must contain non-whitespace text")
        elif isinstance(content, list):
            if not content:
                raise _bad(f"{where}: all messages must have non-empty content")
            _check_text_blocks(content, f"{where}.content", breakpoints)
        else:
            raise _bad(f"{where}.content: Field required")
    last = messages[-1]
    if last["role"] == "assistant":
        text = last["content"] if isinstance(last["content"], str) else last["content"][-1]["text"]
        if text != text.rstrip():
            raise _bad("final assistant content cannot end with trailing whitespace")
    stop_sequences = body.get("stop_sequences")
    if stop_sequences is not None and (
        not isinstance(stop_sequences, list)
        or not all(isinstance(s, str) and s for s in stop_sequences)
    ):
        raise _bad("stop_sequences: Input should be a list of non-empty strings")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise _bad("metadata: Input should be a valid dictionary")
    if not model.startswith("claude-"):
        raise ApiError(404, f"model: {model}")
    return body
