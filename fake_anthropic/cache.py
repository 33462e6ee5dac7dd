"""Prompt caching, billed like the API.

Blocks are taken in the API's order: system blocks, then each message's content blocks (a
string content is one block, which cannot carry ``cache_control``). Each block carrying
``cache_control`` is a breakpoint; the prefix up to and including it is hashed with the model.

* The longest breakpoint prefix seen within its TTL (``5m`` default, ``1h`` supported) is a hit:
  its tokens are reported as ``cache_read_input_tokens`` and its TTL is refreshed.
* The rest of the prefix up to the LAST breakpoint is written: ``cache_creation_input_tokens``.
* ``input_tokens`` is what follows the last breakpoint. The three always add up to the request's
  total input (``tokens.count_request``).

The real API ignores prefixes shorter than a per-model minimum (1,024+ tokens); the fake's
minimum is ``--cache-min-tokens`` (default 0, so short test prompts cache).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from fake_anthropic.tokens import (
    MESSAGE_OVERHEAD,
    REQUEST_OVERHEAD,
    SYSTEM_OVERHEAD,
    count_request,
    count_text,
    system_blocks,
)

TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}


@dataclass(frozen=True)
class InputUsage:
    input_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    @property
    def total(self) -> int:
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens


@dataclass(frozen=True)
class _Breakpoint:
    key: str
    tokens: int
    ttl: float


def _breakpoints(model: str, system: object, messages: list[dict]) -> list[_Breakpoint]:
    digest = hashlib.sha256(model.encode())
    tokens = REQUEST_OVERHEAD
    found: list[_Breakpoint] = []

    def add(label: str, block: dict, overhead: int) -> None:
        nonlocal tokens
        digest.update(json.dumps([label, block.get("text", "")]).encode())
        tokens += overhead + count_text(str(block.get("text", "")))
        control = block.get("cache_control")
        if isinstance(control, dict):
            ttl = TTL_SECONDS.get(control.get("ttl", "5m"), 300.0)
            found.append(_Breakpoint(digest.copy().hexdigest(), tokens, ttl))

    for i, block in enumerate(system_blocks(system)):
        add("system", block, SYSTEM_OVERHEAD if i == 0 else 0)
    for message in messages:
        content = message.get("content")
        blocks = [{"text": content}] if isinstance(content, str) else content
        for i, block in enumerate(blocks):
            add(message.get("role", ""), block, MESSAGE_OVERHEAD if i == 0 else 0)
    return found


class PromptCache:
    def __init__(self, *, min_tokens: int = 0, clock: Callable[[], float] = time.monotonic):
        self.min_tokens = min_tokens
        self._clock = clock
        self._expires: dict[str, float] = {}
        self._writes = 0

    def clear(self) -> None:
        self._expires.clear()

    def usage(self, model: str, system: object, messages: list[dict]) -> InputUsage:
        """Input usage of a request, updating the cache as the API would."""
        total = count_request(system, messages)
        points = [p for p in _breakpoints(model, system, messages) if p.tokens >= self.min_tokens]
        if not points:
            return InputUsage(input_tokens=total)
        now = self._clock()
        read = 0
        for point in reversed(points):
            if self._expires.get(point.key, 0.0) > now:
                read = point.tokens
                break
        creation = points[-1].tokens - read
        for point in points:
            self._expires[point.key] = max(self._expires.get(point.key, 0.0), now + point.ttl)
        self._writes += 1
        if self._writes % 1000 == 0:
            self._expires = {k: v for k, v in self._expires.items() if v > now}
        return InputUsage(
            input_tokens=total - read - creation,
            cache_creation_input_tokens=creation,
            cache_read_input_tokens=read,
        )
