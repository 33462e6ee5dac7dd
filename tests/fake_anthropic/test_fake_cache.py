"""Prompt caching: the first cached prefix is written, the same prefix later is read."""

import uuid

import pytest

from fake_anthropic.cache import PromptCache
from fake_anthropic.tokens import count_request


def _system(marker: str, ttl: str | None = None) -> list[dict]:
    control = {"type": "ephemeral"} if ttl is None else {"type": "ephemeral", "ttl": ttl}
    return [
        {"type": "text", "text": f"You are a careful assistant number {marker}. " * 20},
        {
            "type": "text",
            "text": "[[conversation-summary]]\nFACT: Nothing yet.",
            "cache_control": control,
        },
    ]


def _usage(api, system, text, stream=False, sse=None):
    data = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 50,
        "system": system,
        "messages": [{"role": "user", "content": text}],
        "stream": stream,
    }
    response = api.post("/v1/messages", json=data)
    assert response.status_code == 200
    if stream:
        return sse(response.text)[0][1]["message"]["usage"], data
    return response.json()["usage"], data


def test_cache_creation_then_cache_read(api):
    system = _system(str(uuid.uuid4()))
    first, data = _usage(api, system, "First question?")
    second, data2 = _usage(api, system, "A different second question, longer than the first?")

    assert first["cache_read_input_tokens"] == 0
    assert first["cache_creation_input_tokens"] > 50
    assert second["cache_creation_input_tokens"] == 0
    assert second["cache_read_input_tokens"] == first["cache_creation_input_tokens"]
    # input_tokens is the uncached rest; the three add up to the whole prompt.
    for usage, request in ((first, data), (second, data2)):
        total = count_request(request["system"], request["messages"])
        assert (
            usage["input_tokens"]
            + usage["cache_creation_input_tokens"]
            + usage["cache_read_input_tokens"]
            == total
        )
    assert second["input_tokens"] > first["input_tokens"]


def test_streamed_message_start_reports_cache_usage(api, sse):
    system = _system(str(uuid.uuid4()), ttl="1h")
    first, _ = _usage(api, system, "Hi", stream=True, sse=sse)
    second, _ = _usage(api, system, "Hi", stream=True, sse=sse)
    assert first["cache_creation_input_tokens"] > 0
    assert second["cache_read_input_tokens"] == first["cache_creation_input_tokens"]


def test_changed_prefix_is_a_new_write(api):
    marker = uuid.uuid4().hex
    first, _ = _usage(api, _system(marker + "a"), "Hi")
    other, _ = _usage(api, _system(marker + "b"), "Hi")
    assert first["cache_creation_input_tokens"] > 0
    assert other["cache_read_input_tokens"] == 0
    assert other["cache_creation_input_tokens"] == first["cache_creation_input_tokens"]


def test_no_cache_control_means_no_caching(api):
    system = [{"type": "text", "text": f"Plain prompt {uuid.uuid4()}"}]
    _usage(api, system, "Hi")
    again, data = _usage(api, system, "Hi")
    assert again["cache_read_input_tokens"] == again["cache_creation_input_tokens"] == 0
    assert again["input_tokens"] == count_request(data["system"], data["messages"])


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("ttl", "seconds"), [("5m", 300), ("1h", 3600)])
def test_entries_expire_after_their_ttl(ttl, seconds):
    clock = _Clock()
    cache = PromptCache(clock=clock)
    system = _system("x", ttl=ttl)
    messages = [{"role": "user", "content": "Hi"}]

    written = cache.usage("claude-sonnet-4-6", system, messages).cache_creation_input_tokens
    clock.now += seconds - 1
    assert cache.usage("claude-sonnet-4-6", system, messages).cache_read_input_tokens == written
    clock.now += seconds - 1  # the read refreshed the TTL
    assert cache.usage("claude-sonnet-4-6", system, messages).cache_read_input_tokens == written
    clock.now += seconds + 1
    expired = cache.usage("claude-sonnet-4-6", system, messages)
    assert expired.cache_read_input_tokens == 0
    assert expired.cache_creation_input_tokens == written


def test_cache_is_per_model():
    cache = PromptCache()
    system, messages = _system("m"), [{"role": "user", "content": "Hi"}]
    cache.usage("claude-sonnet-4-6", system, messages)
    assert cache.usage("claude-haiku-4-5", system, messages).cache_read_input_tokens == 0


def test_longest_hit_is_read_and_the_rest_written():
    cache = PromptCache()
    system = _system("two-breakpoints")
    short = [{"role": "user", "content": "Hi"}]
    cache.usage("claude-sonnet-4-6", system, short)
    longer = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "More", "cache_control": {"type": "ephemeral"}}],
        },
    ]
    usage = cache.usage("claude-sonnet-4-6", system, longer)
    assert usage.cache_read_input_tokens > 0
    assert usage.cache_creation_input_tokens > 0
    assert usage.input_tokens == 0
    assert usage.total == count_request(system, longer)


def test_min_tokens_skips_short_prefixes():
    cache = PromptCache(min_tokens=100_000)
    system, messages = _system("short"), [{"role": "user", "content": "Hi"}]
    cache.usage("claude-sonnet-4-6", system, messages)
    usage = cache.usage("claude-sonnet-4-6", system, messages)
    assert usage.cache_read_input_tokens == usage.cache_creation_input_tokens == 0
