"""The IETF RateLimit fields and the 429 error of a decision.

Syntax of draft-ietf-httpapi-ratelimit-headers-10 (structured-field lists, RFC 9651): one list
member per limit that applied, named by its scope::

    RateLimit-Policy: "org";q=600;w=60, "user";q=120;w=60
    RateLimit: "org";r=599;t=1, "user";r=119;t=1

``q`` quota, ``w`` window in seconds, ``qu`` quota unit (``"tokens"`` for the model-token
limits, ``"concurrent-requests"`` for the stream slots; requests are the default unit),
``r`` the units remaining now, ``t`` seconds until the quota is fully available again (GCRA:
until the bucket is full; budget: until the month ends; omitted for concurrency). The budget's
``w`` is the length of the current calendar month (UTC).

The fields of every decision made while serving a request are collected in a per-request
holder (a context variable the middleware opens), so they reach the response whether the
request was admitted or refused.
"""

import contextvars
import math

from llmapp.errors import ApiError
from tenants.ratelimit.core import CheckResult, Decision
from tenants.ratelimit.policy import month_bounds

# scope -> (policy member, ratelimit member), filled by decisions, read by the middleware.
_holder: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "ratelimit_fields", default=None
)

_CODES = [("budget", "budget_exceeded"), ("concurrency", "concurrency_limited")]


def _seconds(ms: float) -> int:
    return max(0, math.ceil(ms / 1000))


def field_members(result: CheckResult) -> tuple[str, str]:
    check = result.check
    name = f'"{check.scope}"'
    if check.kind == "gcra":
        policy = f"{name};q={check.limit};w={max(1, round(check.period_ms / 1000))}"
        if check.scope == "tokens":
            policy += ';qu="tokens"'
        return policy, f"{name};r={max(result.remaining, 0)};t={_seconds(result.reset_ms)}"
    if check.kind == "conc":
        return f'{name};q={check.limit};qu="concurrent-requests"', f"{name};r={result.remaining}"
    _, start_ms, end_ms = month_bounds()
    return (
        f'{name};q={check.limit};w={(end_ms - start_ms) // 1000};qu="tokens"',
        f"{name};r={max(result.remaining, 0)};t={_seconds(result.reset_ms)}",
    )


def decision_fields(decision: Decision) -> dict[str, str]:
    members = [field_members(r) for r in decision.results]
    if not members:
        return {}
    return {
        "RateLimit-Policy": ", ".join(p for p, _ in members),
        "RateLimit": ", ".join(r for _, r in members),
    }


def open_request_fields() -> tuple[dict, contextvars.Token]:
    holder: dict = {}
    return holder, _holder.set(holder)


def close_request_fields(token: contextvars.Token) -> None:
    _holder.reset(token)


def remember(decision: Decision) -> None:
    """Record the decision's fields for the response of the request being served (if any)."""
    holder = _holder.get()
    if holder is None:
        return
    for result in decision.results:
        holder[result.check.scope] = field_members(result)


def holder_fields(holder: dict) -> dict[str, str]:
    if not holder:
        return {}
    return {
        "RateLimit-Policy": ", ".join(p for p, _ in holder.values()),
        "RateLimit": ", ".join(r for _, r in holder.values()),
    }


def refusal(decision: Decision) -> ApiError:
    """The 429 of a refused decision. ``retry_after`` is the earliest time every refused limit
    admits the request again (GCRA: from the bucket state; budget: the month's end; a busy
    concurrency slot: at most one second, as a slot may be freed at any moment)."""
    refused = decision.refused
    scopes = {r.check.scope for r in refused}
    code = next((c for scope, c in _CODES if scope in scopes), "rate_limited")
    retry_after = max(1, max(_seconds(r.retry_ms) for r in refused))
    headers = decision_fields(decision)
    headers["Retry-After"] = str(retry_after)
    names = ", ".join(sorted(scopes))
    message = {
        "budget_exceeded": "The organisation's monthly token budget cannot cover this turn.",
        "concurrency_limited": "Too many generations in flight for this organisation.",
    }.get(code, f"Rate limit exceeded ({names}).")
    return ApiError(
        f"{message} Retry in {retry_after} s.",
        code=code,
        status=429,
        headers=headers,
        extra={"retry_after": retry_after, "limits": sorted(scopes)},
    )
