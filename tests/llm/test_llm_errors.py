"""Every injected fault maps to its code; retries only before the first token; cancellation."""

import asyncio
import socket
import time
import uuid

import pytest
from django.test import override_settings

from llmapp import llm

MODEL = "claude-sonnet-4-6"


def _messages(text: str) -> list[dict]:
    # A unique text per call: fail-first counts and replies are keyed by the request body.
    return [{"role": "user", "content": f"{text} ({uuid.uuid4()})"}]


async def _run(text: str, **kwargs) -> llm.ReplyResult:
    async with llm.open_stream(
        model=MODEL, system="Sys", messages=_messages(text), max_tokens=200, **kwargs
    ) as stream:
        async for _ in stream:
            pass
    return stream.result


async def _eventually(predicate, seconds: float = 3.0) -> bool:
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


async def _collect(text: str, deltas: list[str]) -> llm.ReplyStream:
    async with llm.open_stream(
        model=MODEL, system="Sys", messages=_messages(text), max_tokens=200
    ) as stream:
        async for delta in stream:
            deltas.append(delta)
    return stream


@pytest.mark.parametrize(
    ("directive", "code", "retryable"),
    [
        ("[[fake:status=529]]", llm.MODEL_OVERLOADED, True),
        ("[[fake:status=429]]", llm.MODEL_RATE_LIMITED, True),
        ("[[fake:status=500]]", llm.MODEL_ERROR, True),
        ("[[fake:status=503]]", llm.MODEL_ERROR, True),
        ("[[fake:status=504]]", llm.MODEL_TIMEOUT, True),
        ("[[fake:status=400]]", llm.MODEL_BAD_REQUEST, False),
        ("[[fake:status=404]]", llm.MODEL_BAD_REQUEST, False),
        ("[[fake:status=413]]", llm.MODEL_BAD_REQUEST, False),
        ("[[fake:status=401]]", llm.MODEL_ERROR, False),
    ],
)
async def test_error_status_before_the_stream(directive, code, retryable):
    with override_settings(LLM_MAX_RETRIES=0), pytest.raises(llm.LLMError) as caught:
        await _run(f"Hi {directive}")
    error = caught.value
    assert error.code == code
    assert error.retryable is retryable
    assert error.partial_text == ""
    assert error.usage == llm.Usage()
    assert error.as_dict() == {"code": code, "message": error.message, "retryable": retryable}
    assert "fake" not in error.message  # user-facing text, not upstream detail


@pytest.mark.parametrize(
    ("directive", "code"),
    [
        ("[[fake:error-after=3]]", llm.MODEL_OVERLOADED),
        ("[[fake:cut-after=3]]", llm.MODEL_ERROR),
        ("[[fake:end-after=3]]", llm.MODEL_ERROR),
    ],
)
async def test_mid_stream_failure_keeps_partial_text_and_usage(fake, directive, code):
    before = fake.stats()["requests"]
    deltas = []
    with pytest.raises(llm.LLMError) as caught:
        await _collect(f"Hi {directive}", deltas)
    error = caught.value
    assert error.code == code
    assert error.retryable is True
    assert len(deltas) == 3
    assert error.partial_text == "".join(deltas) != ""
    assert error.usage.input_tokens > 0
    assert error.request_id.startswith("req_")
    assert error.cost_usd == llm.compute_cost(MODEL, error.usage) > 0
    # Never retried once the stream had begun (LLM_MAX_RETRIES is 2 here).
    assert fake.stats()["requests"] - before == 1


async def test_no_first_token_in_time_is_a_timeout():
    started = time.perf_counter()
    with (
        override_settings(LLM_FIRST_TOKEN_TIMEOUT_SECONDS=0.3),
        pytest.raises(llm.LLMError) as caught,
    ):
        await _run("Hi [[fake:ttft-ms=3000]]")
    assert caught.value.code == llm.MODEL_TIMEOUT
    assert caught.value.retryable is True
    assert caught.value.usage.input_tokens > 0  # message_start had arrived
    assert time.perf_counter() - started < 1.5


async def test_first_token_timeout_as_an_argument():
    with pytest.raises(llm.LLMError) as caught:
        await _run("Hi [[fake:ttft-ms=3000]]", first_token_timeout=0.2)
    assert caught.value.code == llm.MODEL_TIMEOUT


async def test_total_timeout_after_the_first_token():
    with (
        override_settings(LLM_TOTAL_TIMEOUT_SECONDS=0.5),
        pytest.raises(llm.LLMError) as caught,
    ):
        await _run("Hi [[fake:stall-ms=3000]]")
    assert caught.value.code == llm.MODEL_TIMEOUT
    assert caught.value.partial_text != ""


async def test_overloaded_before_the_first_token_is_retried(fake):
    before = fake.stats()
    result = await _run("Hi [[fake:fail-first=1]]")
    after = fake.stats()
    assert result.stop_reason == "end_turn"
    assert after["requests"] - before["requests"] == 2
    assert after["by_status"]["529"] - before["by_status"].get("529", 0) == 1


async def test_without_retries_the_same_fault_is_an_error(fake):
    before = fake.stats()["requests"]
    with override_settings(LLM_MAX_RETRIES=0), pytest.raises(llm.LLMError) as caught:
        await _run("Hi [[fake:fail-first=1]]")
    assert caught.value.code == llm.MODEL_OVERLOADED
    assert fake.stats()["requests"] - before == 1


async def test_cancellation_closes_the_upstream_connection(fake):
    before = fake.stats()
    first_delta = asyncio.Event()
    stream = llm.open_stream(
        model=MODEL,
        system="Sys",
        messages=_messages("Slow please [[fake:itl-ms=200]] [[fake:tokens=100]]"),
        max_tokens=500,
    )

    async def consume():
        async with stream:
            async for _ in stream:
                first_delta.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_delta.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert stream.outcome == "stopped"
    assert stream.result is None
    assert stream.error is None
    assert stream.text_so_far != ""
    assert stream.usage_so_far.input_tokens > 0
    # The server sees the client go away long before the ~20 s stream would have ended.
    assert await _eventually(
        lambda: fake.stats()["client_disconnects"] == before["client_disconnects"] + 1
    )
    assert fake.stats()["streams_completed"] == before["streams_completed"]


async def test_leaving_the_loop_early_stops_the_stream(fake):
    before = fake.stats()["client_disconnects"]
    async with llm.open_stream(
        model=MODEL,
        system=None,
        messages=_messages("Slow [[fake:itl-ms=200]] [[fake:tokens=100]]"),
        max_tokens=500,
    ) as stream:
        async for _ in stream:
            break
    assert stream.outcome == "stopped"
    assert await _eventually(lambda: fake.stats()["client_disconnects"] == before + 1)


async def test_iterating_outside_async_with_is_refused():
    stream = llm.open_stream(model=MODEL, system=None, messages=_messages("x"), max_tokens=5)
    with pytest.raises(RuntimeError, match="async with"):
        await stream.__anext__()


async def _drain(stream: llm.ReplyStream) -> None:
    async with stream:
        async for _ in stream:
            pass


async def test_the_stream_keeps_its_error():
    stream = llm.open_stream(
        model=MODEL, system=None, messages=_messages("x [[fake:error-after=2]]"), max_tokens=50
    )
    with pytest.raises(llm.LLMError) as caught:
        await _drain(stream)
    assert stream.error is caught.value
    assert stream.outcome == llm.MODEL_OVERLOADED
    assert stream.result is None
    assert stream.text_so_far == caught.value.partial_text


async def test_connection_refused_is_a_retryable_model_error():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with (
        override_settings(ANTHROPIC_BASE_URL=f"http://127.0.0.1:{port}", LLM_MAX_RETRIES=0),
        pytest.raises(llm.LLMError) as caught,
    ):
        await _run("Anyone there?")
    assert caught.value.code == llm.MODEL_ERROR
    assert caught.value.retryable is True
    assert caught.value.detail == "APIConnectionError"


async def test_an_unknown_transport_is_a_configuration_error():
    from django.core.exceptions import ImproperlyConfigured
    from django.test import override_settings

    from llmapp.llm.client import get_client

    with override_settings(LLM_HTTP_TRANSPORT="curl"), pytest.raises(ImproperlyConfigured):
        get_client()
