"""Percentiles and the "added by the app" arithmetic."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}


def percentile(values: Iterable[float], q: float) -> float | None:
    """Nearest-rank percentile (no interpolation: every figure is a latency that happened)."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


def summary_ms(values: list[float]) -> dict[str, float | None]:
    """p50/p95/p99 in ms of a list of seconds."""
    return {name: ms(percentile(values, q)) for name, q in QUANTILES.items()}


def added_ms(app: list[float], direct: list[float]) -> dict[str, float | None]:
    """Per percentile: the app's latency minus the direct path's, in ms.

    Both lists come from the same run, sample for sample interleaved, so machine noise (other
    processes on these 2 cores) lands on both sides.
    """
    out: dict[str, float | None] = {}
    for name, q in QUANTILES.items():
        a, d = percentile(app, q), percentile(direct, q)
        out[name] = None if a is None or d is None else round((a - d) * 1000, 2)
    return out


def top_errors(errors: list[str], limit: int = 3) -> list[str]:
    return [f"{count}x {text}" for text, count in Counter(errors).most_common(limit)]
