"""Prometheus metrics of the rate limiter (default registry, defined once at import)."""

from prometheus_client import REGISTRY, Counter

# scope: org, user, tokens, concurrency, budget;
# outcome: allowed, refused, fail_open (decided in memory while Redis is down), fail_closed.
# A second import (a reload) reuses the registered collector instead of failing.
rate_limit_decisions_total = REGISTRY._names_to_collectors.get(
    "rate_limit_decisions_total"
) or Counter(
    "rate_limit_decisions_total",
    "Rate-limit decisions per limit scope and outcome.",
    ["scope", "outcome"],
)


def count_decision(scopes_results, *, fallback: bool) -> None:
    """One increment per check: refused where it refused, else allowed (fail_open on fallback)."""
    for result in scopes_results:
        outcome = "refused" if not result.ok else "fail_open" if fallback else "allowed"
        rate_limit_decisions_total.labels(scope=result.check.scope, outcome=outcome).inc()


def count_fail_closed(checks) -> None:
    for check in checks:
        rate_limit_decisions_total.labels(scope=check.scope, outcome="fail_closed").inc()
