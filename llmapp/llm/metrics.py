"""Prometheus metrics of model calls (default registry, served by ``/metrics``).

Each metric is created once; importing this module again (a reload, a second import path)
returns the already registered collector instead of failing on duplicate registration.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Histogram

TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)


def _registered(cls, name: str, documentation: str, labelnames: tuple[str, ...], **kwargs):
    # Counters register "<name>_total"; histograms "<name>_count" (among others).
    sample = name if name.endswith("_total") or cls is not Histogram else name + "_count"
    existing = REGISTRY._names_to_collectors.get(sample)
    if existing is not None:
        return existing
    return cls(name, documentation, labelnames, **kwargs)


REQUESTS = _registered(
    Counter,
    "llm_requests_total",
    "Model calls by outcome: ok, stopped, or an error code.",
    ("model", "outcome"),
)
TOKENS = _registered(
    Counter,
    "llm_tokens_total",
    "Tokens reported by the model API, by kind: input, output, cache_read, cache_creation.",
    ("model", "kind"),
)
TIME_TO_FIRST_TOKEN = _registered(
    Histogram,
    "llm_time_to_first_token_seconds",
    "Time from sending a request to its first text delta.",
    ("model",),
    buckets=TTFT_BUCKETS,
)
REQUEST_DURATION = _registered(
    Histogram,
    "llm_request_duration_seconds",
    "Time from sending a request to its end (complete, failed or stopped).",
    ("model",),
    buckets=DURATION_BUCKETS,
)
COST = _registered(
    Counter,
    "llm_cost_usd_total",
    "Cost of model calls in USD, from settings.LLM_PRICING.",
    ("model",),
)
