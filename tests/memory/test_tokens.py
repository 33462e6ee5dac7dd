"""Token counting: the estimator, the per-model margin calibrated from reported usage (raise
only, capped, shared through Redis), and the budget derived from the model's window."""

import pytest
from django.core.cache import cache
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from fake_anthropic.tokens import count_request, count_text
from memory.tokens import (
    PIECE,
    budget_for,
    context_limit,
    estimate_request,
    estimate_text,
    margin_calibrate,
    margin_get,
    piece_tokens,
)


@hsettings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.text(alphabet=[chr(i) for i in range(128)])))
def test_fast_estimate_equals_the_piecewise_definition_and_stays_above_upstream(text):
    assert estimate_text(text) == sum(
        piece_tokens(m.lastgroup, m.group(0)) for m in PIECE.finditer(text)
    )
    assert estimate_text(text) >= count_text(text)


def test_estimator_is_its_own_count_not_the_upstreams():
    prose = "The cat sat on a small mat while the dog slept. " * 20
    assert estimate_text(prose) != count_text(prose)
    system = [{"type": "text", "text": "Be brief."}]
    messages = [{"role": "user", "content": prose}]
    assert estimate_request(system, messages) >= count_request(system, messages)


def test_margin_only_rises_and_is_capped(settings):
    settings.MEMORY_TOKEN_MARGIN = 1.1
    settings.MEMORY_TOKEN_MARGIN_MAX = 1.5
    assert margin_get("m-1") == pytest.approx(1.1)
    # The model counted less than we estimated: nothing changes.
    assert margin_calibrate(
        model="m-1", estimated_tokens=1000, reported_tokens=800
    ) == pytest.approx(1.1)
    # It counted 20% more: the margin keeps its 10% headroom above that ratio.
    assert margin_calibrate(
        model="m-1", estimated_tokens=1000, reported_tokens=1200
    ) == pytest.approx(1.32)
    assert margin_get("m-1") == pytest.approx(1.32)
    # A smaller ratio later never lowers it.
    assert margin_calibrate(
        model="m-1", estimated_tokens=1000, reported_tokens=1050
    ) == pytest.approx(1.32)
    # A wild report is capped.
    assert margin_calibrate(
        model="m-1", estimated_tokens=100, reported_tokens=10_000
    ) == pytest.approx(1.5)
    # Per model.
    assert margin_get("m-2") == pytest.approx(1.1)
    # Unknown usage does not calibrate.
    assert margin_calibrate(model="m-2", estimated_tokens=0, reported_tokens=500) == pytest.approx(
        1.1
    )


def test_margin_is_shared_through_the_cache(settings):
    """Another process sees the raised margin: it lives in Redis, not in this process."""
    if "redis" not in settings.CACHES["default"]["BACKEND"]:
        pytest.skip("needs REDIS_URL")
    margin_calibrate(model="shared-model", estimated_tokens=1000, reported_tokens=1500)
    raw = cache.client.get_client().get(cache.make_key("memory:token-margin:shared-model"))
    assert int(raw) == 1650


def test_budget_is_window_minus_reply_minus_margin(settings):
    settings.LLM_CONTEXT_WINDOWS = {"small-model": 10_000}
    settings.LLM_DEFAULT_CONTEXT_WINDOW = 50_000
    settings.MEMORY_CONTEXT_BUDGET_TOKENS = 0
    settings.MEMORY_TOKEN_MARGIN = 1.25
    assert context_limit(model="small-model", max_tokens=2000) == 8000
    assert budget_for(model="small-model", max_tokens=2000) == 6400
    assert context_limit(model="unknown", max_tokens=1000) == 49_000
    settings.MEMORY_CONTEXT_BUDGET_TOKENS = 3000
    assert budget_for(model="small-model", max_tokens=2000) == 2400
    # The setting can only shrink the budget below what the window allows.
    settings.MEMORY_CONTEXT_BUDGET_TOKENS = 90_000
    assert context_limit(model="small-model", max_tokens=2000) == 8000
