"""llmapp.llm against fake_anthropic over a socket, with the real SDK: replies and usage."""

import asyncio
import uuid

import pytest
from django.test import override_settings
from structlog.testing import capture_logs

from fake_anthropic.tokens import count_request, count_text
from llmapp import llm
from llmapp.llm import client as llm_client

MODEL = "claude-sonnet-4-6"


def _messages(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


async def test_stream_yields_deltas_then_result():
    text = f"Tell me about streams {uuid.uuid4()}"
    deltas = []
    async with llm.open_stream(
        model=MODEL, system="You are brief.", messages=_messages(text), max_tokens=200
    ) as stream:
        async for delta in stream:
            assert stream.result is None
            deltas.append(delta)
    result = stream.result

    assert len(deltas) > 5
    assert result.text == "".join(deltas) == stream.text_so_far
    assert result.text.startswith("Received 1 message.")
    assert result.stop_reason == "end_turn"
    assert result.model == MODEL
    assert result.request_id.startswith("req_")
    assert result.message_id.startswith("msg_")
    assert 0 <= result.ttft_ms <= result.latency_ms
    assert result.usage.output_tokens == count_text(result.text) == 40
    system = llm.build_system("You are brief.")
    assert result.usage.total_input_tokens == count_request(system, _messages(text))
    assert result.cost_usd == llm.compute_cost(MODEL, result.usage) > 0
    assert stream.outcome == "ok"


async def test_stream_reply_generator_ends_with_one_result():
    items = [
        item
        async for item in llm.stream_reply(
            model=MODEL, system=None, messages=_messages("Generator please"), max_tokens=100
        )
    ]
    assert all(isinstance(item, str) for item in items[:-1])
    assert isinstance(items[-1], llm.ReplyResult)
    assert items[-1].text == "".join(items[:-1])


async def test_complete_collects_the_reply_and_honours_max_tokens():
    result = await llm.complete(
        model=MODEL, system=None, messages=_messages("Short one"), max_tokens=6
    )
    assert result.stop_reason == "max_tokens"
    assert result.usage.output_tokens == 6
    assert count_text(result.text) == 6


def test_complete_sync_runs_in_a_private_loop_and_closes_its_client():
    loops_before = len(llm_client._clients)
    result = llm.complete_sync(
        model=MODEL, system="Be terse.", messages=_messages("From Celery"), max_tokens=100
    )
    assert result.stop_reason == "end_turn"
    assert 'Last user message: "From Celery"' in result.text
    assert len(llm_client._clients) == loops_before


async def test_complete_sync_refuses_to_block_a_running_loop():
    with pytest.raises(RuntimeError, match="await complete"):
        llm.complete_sync(model=MODEL, system=None, messages=_messages("x"), max_tokens=5)


async def test_one_client_per_loop_and_per_configuration():
    first = llm.get_client()
    assert llm.get_client() is first
    with override_settings(LLM_MAX_RETRIES=0):
        other = llm.get_client()
        assert other is not first
        assert other.max_retries == 0
    assert llm.get_client() is first

    def in_another_loop():
        async def get():
            client = llm.get_client()
            await llm.close_client()
            return client

        return asyncio.run(get())

    assert await asyncio.to_thread(in_another_loop) is not first


async def test_base_url_and_placeholder_key_come_from_settings(fake):
    client = llm.get_client()
    assert str(client.base_url).rstrip("/") == fake.url
    assert client.api_key == "fake-key"


async def test_second_identical_prefix_is_a_cache_read():
    system = f"You are the assistant of shop {uuid.uuid4()}. " + "Always be polite. " * 30
    first = await llm.complete(
        model=MODEL, system=system, messages=_messages("First turn"), max_tokens=50
    )
    second = await llm.complete(
        model=MODEL, system=system, messages=_messages("Second turn, new words"), max_tokens=50
    )
    assert first.usage.cache_read_input_tokens == 0
    assert first.usage.cache_creation_input_tokens > 100
    assert second.usage.cache_creation_input_tokens == 0
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.cost_usd < first.cost_usd


async def test_system_blocks_with_a_summary_are_one_cached_prefix():
    blocks = [
        {"type": "text", "text": f"Prompt {uuid.uuid4()}. " + "Answer in English. " * 20},
        {"type": "text", "text": "[[conversation-summary]]\nFACT: The user likes tea."},
    ]
    first = await llm.complete(
        model=MODEL, system=blocks, messages=_messages("A [[fake:tokens=100]]"), max_tokens=200
    )
    second = await llm.complete(
        model=MODEL, system=blocks, messages=_messages("B [[fake:tokens=100]]"), max_tokens=200
    )
    assert "Summary: present (1 lines)." in first.text
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens > 0
    assert "cache_control" not in blocks[-1]  # the caller's blocks are not modified


def test_build_system():
    assert llm.build_system(None) is None
    assert llm.build_system("  ") is None
    assert llm.build_system("Hi") == [
        {"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"}}
    ]
    assert llm.build_system("Hi", cache=False) == [{"type": "text", "text": "Hi"}]
    blocks = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    built = llm.build_system(blocks)
    assert "cache_control" not in built[0]
    assert built[1]["cache_control"] == {"type": "ephemeral"}


async def test_logs_never_hold_the_text():
    secret = f"my password is {uuid.uuid4().hex}"
    with capture_logs() as logs:
        result = await llm.complete(
            model=MODEL, system="Sys prompt words", messages=_messages(secret), max_tokens=80
        )
    assert secret in result.text  # the fake echoes it, so a leak would be visible below
    finished = [entry for entry in logs if entry["event"] == "llm.request.finished"]
    assert len(finished) == 1
    assert finished[0]["outcome"] == "ok"
    dumped = repr(logs)
    assert secret not in dumped
    assert "Sys prompt words" not in dumped
