"""Per-tenant limits: the entry points the API, the chat turn and the WebSocket consumer call.

- ``request_admit`` / ``request_admit_sync``: one API call or WebSocket ``chat.send`` against the
  organisation's and the user's requests per window.
- ``turn_admit`` / ``turn_admit_sync``: before a model call, reserve the estimated tokens (input
  estimate plus max_tokens) against the tokens per window and the monthly budget, and take a
  concurrency slot; returns a ``TurnLease``. ``lease.settle(used_tokens=...)`` (or
  ``settle_sync``) afterwards charges the real usage (refund or extra) and frees the slot, so a
  burst overshoots a limit by at most one reservation. A lease that is never settled (the
  process died) frees its slot after ``RATE_LIMIT_LEASE_TTL_SECONDS``.

A refusal raises ``llmapp.errors.ApiError`` (429, code ``rate_limited``, ``concurrency_limited``
or ``budget_exceeded``, a ``Retry-After`` header, the RateLimit fields, and
``extra["retry_after"]`` in seconds for the WebSocket ``chat.error``). Redis down with
``RATE_LIMIT_FAIL_MODE=closed`` raises a 503 ``rate_limiter_unavailable``. The decision itself is
made in ``tenants/ratelimit`` (one Lua script on Redis, or the in-memory limiter).
"""

import uuid
from dataclasses import dataclass, field

import structlog
from django.conf import settings

from tenants.ratelimit.backends import limiter, memory_backend
from tenants.ratelimit.core import Check, Decision
from tenants.ratelimit.headers import refusal, remember
from tenants.ratelimit.policy import request_checks, turn_checks

log = structlog.get_logger(__name__)


@dataclass
class TurnLease:
    """Held for the length of one model call: reserved tokens and a concurrency slot."""

    reserved_tokens: int = 0
    checks: list[Check] = field(default_factory=list)
    source: str = "redis"
    settled: bool = False

    def _settle_checks(self, used_tokens: int) -> list[Check]:
        delta = max(int(used_tokens), 0) - self.reserved_tokens
        return [c.with_cost(delta) if c.kind != "conc" else c for c in self.checks]

    def _begin_settle(self, used_tokens: int) -> list[Check] | None:
        if self.settled or not self.checks:
            self.settled = True
            return None
        self.settled = True
        return self._settle_checks(used_tokens)

    async def settle(self, *, used_tokens: int) -> None:
        """Replace the reservation with the real usage and free the concurrency slot.
        Must be called exactly once, whatever happened to the turn (success, failure, stop);
        a second call does nothing. Never raises: the lease TTL frees a slot it failed to."""
        checks = self._begin_settle(used_tokens)
        if checks is None:
            return
        try:
            if self.source == "redis":
                await limiter().adecide(checks, "settle")
            else:
                memory_backend.decide(checks, "settle")
        except Exception as exc:  # noqa: BLE001 - settling must not fail the turn
            log.warning("ratelimit.settle_failed", error=type(exc).__name__)

    def settle_sync(self, *, used_tokens: int) -> None:
        """``settle`` for sync code."""
        checks = self._begin_settle(used_tokens)
        if checks is None:
            return
        try:
            if self.source == "redis":
                limiter().decide(checks, "settle")
            else:
                memory_backend.decide(checks, "settle")
        except Exception as exc:  # noqa: BLE001 - settling must not fail the turn
            log.warning("ratelimit.settle_failed", error=type(exc).__name__)


def _conclude(decision: Decision) -> None:
    remember(decision)
    if not decision.allowed:
        raise refusal(decision)


def _lease(decision: Decision, checks: list[Check], estimated_tokens: int) -> TurnLease:
    source = "redis" if decision.source == "redis" else "memory"
    return TurnLease(reserved_tokens=max(int(estimated_tokens), 0), checks=checks, source=source)


def _enabled() -> bool:
    return bool(settings.RATE_LIMIT_ENABLED)


async def request_admit(*, tenant) -> None:
    """Count one request of ``tenant`` (a TenantContext) against the per-window limits;
    raise a 429 ``ApiError`` when a limit refuses it (nothing is consumed then)."""
    if not _enabled():
        return
    checks = request_checks(tenant)
    if checks:
        _conclude(await limiter().adecide(checks))


def request_admit_sync(*, tenant) -> None:
    """``request_admit`` for sync code (the DRF throttle)."""
    if not _enabled():
        return
    checks = request_checks(tenant)
    if checks:
        _conclude(limiter().decide(checks))


async def turn_admit(*, tenant, estimated_tokens: int) -> TurnLease:
    """Reserve ``estimated_tokens`` and a concurrency slot before calling the model."""
    if not _enabled():
        return TurnLease(reserved_tokens=estimated_tokens)
    checks = turn_checks(tenant, estimated_tokens=estimated_tokens, lease_id=uuid.uuid4().hex)
    if not checks:
        return TurnLease(reserved_tokens=estimated_tokens)
    decision = await limiter().adecide(checks)
    _conclude(decision)
    return _lease(decision, checks, estimated_tokens)


def turn_admit_sync(*, tenant, estimated_tokens: int) -> TurnLease:
    """``turn_admit`` for sync code."""
    if not _enabled():
        return TurnLease(reserved_tokens=estimated_tokens)
    checks = turn_checks(tenant, estimated_tokens=estimated_tokens, lease_id=uuid.uuid4().hex)
    if not checks:
        return TurnLease(reserved_tokens=estimated_tokens)
    decision = limiter().decide(checks)
    _conclude(decision)
    return _lease(decision, checks, estimated_tokens)
