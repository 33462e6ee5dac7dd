"""Cost arithmetic and Prometheus metrics of model calls."""

import asyncio
import uuid
from decimal import Decimal

import pytest
from django.test import override_settings
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from llmapp import llm
from llmapp.llm import pricing

MODEL = "claude-sonnet-4-6"


def _sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_cost_uses_every_kind_of_token():
    usage = llm.Usage(
        input_tokens=1_000_000,
        output_tokens=100_000,
        cache_read_input_tokens=2_000_000,
        cache_creation_input_tokens=10_000,
    )
    # 3.00 + 1.50 + 2 * 0.30 + 0.01 * 3.75, for claude-sonnet-4-6
    assert llm.compute_cost(MODEL, usage) == Decimal("5.13750000")


def test_cost_is_quantised_to_1e8():
    cost = llm.compute_cost(MODEL, llm.Usage(input_tokens=1, output_tokens=1))
    assert cost == Decimal("0.00001800")
    assert cost.as_tuple().exponent == -8
    assert llm.compute_cost("claude-haiku-4-5", llm.Usage(input_tokens=7)) == Decimal("0.00000700")


def test_pricing_comes_from_settings():
    with override_settings(
        LLM_PRICING={"claude-x": {"input": 1, "output": 2, "cache_write": 0, "cache_read": 0.5}}
    ):
        usage = llm.Usage(input_tokens=500_000, output_tokens=250_000, cache_read_input_tokens=2)
        assert llm.compute_cost("claude-x", usage) == Decimal("1.00000100")


def test_unknown_model_costs_nothing_and_warns_once():
    model = f"claude-unknown-{uuid.uuid4().hex[:8]}"
    with capture_logs() as logs:
        assert llm.compute_cost(model, llm.Usage(input_tokens=10**6)) == 0
        assert llm.compute_cost(model, llm.Usage(input_tokens=10**6)) == 0
    warnings = [e for e in logs if e["event"] == "llm.pricing.unknown_model"]
    assert len(warnings) == 1
    assert warnings[0]["model"] == model
    assert model in pricing._warned


async def test_metrics_of_a_successful_call():
    before = {
        "ok": _sample("llm_requests_total", model=MODEL, outcome="ok"),
        "input": _sample("llm_tokens_total", model=MODEL, kind="input"),
        "output": _sample("llm_tokens_total", model=MODEL, kind="output"),
        "cache_creation": _sample("llm_tokens_total", model=MODEL, kind="cache_creation"),
        "ttft": _sample("llm_time_to_first_token_seconds_count", model=MODEL),
        "duration": _sample("llm_request_duration_seconds_count", model=MODEL),
        "cost": _sample("llm_cost_usd_total", model=MODEL),
    }
    result = await llm.complete(
        model=MODEL,
        system=f"Metrics {uuid.uuid4()}",
        messages=[{"role": "user", "content": "Hi"}],
        max_tokens=100,
    )

    assert _sample("llm_requests_total", model=MODEL, outcome="ok") == before["ok"] + 1
    assert _sample("llm_tokens_total", model=MODEL, kind="input") == (
        before["input"] + result.usage.input_tokens
    )
    assert _sample("llm_tokens_total", model=MODEL, kind="output") == before["output"] + 40
    assert _sample("llm_tokens_total", model=MODEL, kind="cache_creation") == (
        before["cache_creation"] + result.usage.cache_creation_input_tokens
    )
    assert _sample("llm_time_to_first_token_seconds_count", model=MODEL) == before["ttft"] + 1
    assert _sample("llm_request_duration_seconds_count", model=MODEL) == before["duration"] + 1
    assert _sample("llm_cost_usd_total", model=MODEL) == pytest.approx(
        before["cost"] + float(result.cost_usd)
    )


async def test_metrics_of_failed_and_stopped_calls():
    overloaded = _sample("llm_requests_total", model=MODEL, outcome="model_overloaded")
    stopped = _sample("llm_requests_total", model=MODEL, outcome="stopped")
    ok = _sample("llm_requests_total", model=MODEL, outcome="ok")

    with pytest.raises(llm.LLMError):
        await llm.complete(
            model=MODEL,
            system=None,
            messages=[{"role": "user", "content": f"{uuid.uuid4()} [[fake:error-after=1]]"}],
            max_tokens=100,
        )
    async with llm.open_stream(
        model=MODEL,
        system=None,
        messages=[{"role": "user", "content": f"{uuid.uuid4()} [[fake:itl-ms=100]]"}],
        max_tokens=100,
    ) as stream:
        async for _ in stream:
            break
    await asyncio.sleep(0)

    assert _sample("llm_requests_total", model=MODEL, outcome="model_overloaded") == overloaded + 1
    assert _sample("llm_requests_total", model=MODEL, outcome="stopped") == stopped + 1
    assert _sample("llm_requests_total", model=MODEL, outcome="ok") == ok


def test_metrics_module_can_be_imported_twice():
    import importlib
    import sys

    from llmapp.llm import metrics

    saved = sys.modules.pop("llmapp.llm.metrics")
    try:
        again = importlib.import_module("llmapp.llm.metrics")
        assert again.REQUESTS is metrics.REQUESTS
        assert again.TIME_TO_FIRST_TOKEN is metrics.TIME_TO_FIRST_TOKEN
    finally:
        sys.modules["llmapp.llm.metrics"] = saved
