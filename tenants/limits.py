"""Per-tenant limits.

INTERFACE USED BY THE CHAT TURN AND THE WEBSOCKET CONSUMER (keep the signatures):
``request_admit`` and ``turn_admit``. This first version admits everything; the rate-limit
feature replaces the bodies (raising ``llmapp.errors.ApiError`` with status 429 and code
``rate_limited``/``concurrency_limited``/``budget_exceeded`` and a ``Retry-After`` header).
"""

from dataclasses import dataclass


@dataclass
class TurnLease:
    """Held for the length of one model call: reserved tokens and a concurrency slot."""

    reserved_tokens: int = 0

    async def settle(self, *, used_tokens: int) -> None:
        """Replace the reservation with the real usage and free the concurrency slot.
        Must be called exactly once, whatever happened to the turn (success, failure, stop)."""


async def request_admit(*, tenant) -> None:
    """Count one request of ``tenant`` (a TenantContext) against the per-minute limits."""


async def turn_admit(*, tenant, estimated_tokens: int) -> TurnLease:
    """Reserve ``estimated_tokens`` and a concurrency slot before calling the model."""
    return TurnLease(reserved_tokens=estimated_tokens)
