"""Cost of a call from ``settings.LLM_PRICING`` (USD per million tokens)."""

from __future__ import annotations

import threading
from decimal import Decimal

import structlog
from django.conf import settings

from llmapp.llm.results import Usage

log = structlog.get_logger(__name__)

QUANTUM = Decimal("0.00000001")
_MILLION = Decimal(1_000_000)
_warned: set[str] = set()
_warned_lock = threading.Lock()


def _price(prices: dict[str, object], key: str) -> Decimal:
    return Decimal(str(prices.get(key, 0) or 0))


def compute_cost(model: str, usage: Usage) -> Decimal:
    """input*in + output*out + cache_creation*cache_write + cache_read*cache_read, per million.

    Quantised to 1e-8 USD. An unknown model costs 0 (and logs one warning per model).
    """
    prices = settings.LLM_PRICING.get(model)
    if prices is None:
        with _warned_lock:
            first = model not in _warned
            _warned.add(model)
        if first:
            log.warning("llm.pricing.unknown_model", model=model)
        return Decimal(0).quantize(QUANTUM)
    total = (
        usage.input_tokens * _price(prices, "input")
        + usage.output_tokens * _price(prices, "output")
        + usage.cache_creation_input_tokens * _price(prices, "cache_write")
        + usage.cache_read_input_tokens * _price(prices, "cache_read")
    )
    return (total / _MILLION).quantize(QUANTUM)
