"""Which limits apply to a tenant, and their keys.

Limits come from the ``RATE_LIMIT_*`` settings, overridden by the Organization's own fields
(``None`` = the default, ``0`` = no limit). They are read from the Organization object the
authentication already loaded (``tenant.organization``), so deciding costs no query; an admin
change applies from the caller's next authenticated request (next connection for WebSockets).

Every key of one organisation carries the hash tag ``{org:<uuid>}``, so one decision touches a
single Redis Cluster slot.
"""

import calendar
from datetime import UTC, datetime

from django.conf import settings

from tenants.ratelimit.core import Check


def _effective(org, field: str, default: int) -> int:
    value = getattr(org, field, None)
    return default if value is None else int(value)


def org_limits(org) -> dict[str, int]:
    """The effective limits of an organisation (0 = no limit)."""
    return {
        "requests": _effective(
            org, "rate_limit_requests_per_minute", settings.RATE_LIMIT_REQUESTS_PER_MINUTE
        ),
        "user_requests": _effective(
            org,
            "rate_limit_user_requests_per_minute",
            settings.RATE_LIMIT_USER_REQUESTS_PER_MINUTE,
        ),
        "tokens": _effective(
            org, "rate_limit_tokens_per_minute", settings.RATE_LIMIT_TOKENS_PER_MINUTE
        ),
        "streams": _effective(
            org, "rate_limit_max_concurrent_streams", settings.RATE_LIMIT_MAX_CONCURRENT_STREAMS
        ),
        "budget": _effective(org, "monthly_token_budget", settings.RATE_LIMIT_MONTHLY_TOKEN_BUDGET),
    }


def org_key(org_id, suffix: str) -> str:
    return f"{settings.RATE_LIMIT_KEY_PREFIX}:{{org:{org_id}}}:{suffix}"


def window_ms() -> float:
    return float(settings.RATE_LIMIT_WINDOW_SECONDS) * 1000


def month_bounds(now: datetime | None = None) -> tuple[str, int, int]:
    """The current calendar month (UTC): its label, start and end in ms since the epoch."""
    now = now or datetime.now(UTC)
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    days = calendar.monthrange(now.year, now.month)[1]
    end_s = int(start.timestamp()) + days * 86_400
    return f"{now.year:04d}-{now.month:02d}", int(start.timestamp()) * 1000, end_s * 1000


def request_checks(tenant) -> list[Check]:
    """Per-request limits: the organisation's and the (organisation, user)'s."""
    org = tenant.organization
    limits = org_limits(org)
    checks = []
    if limits["requests"] > 0:
        checks.append(Check("org", "gcra", org_key(org.pk, "req"), limits["requests"], window_ms()))
    if limits["user_requests"] > 0:
        checks.append(
            Check(
                "user",
                "gcra",
                org_key(org.pk, f"user:{tenant.user.pk}:req"),
                limits["user_requests"],
                window_ms(),
            )
        )
    return checks


def turn_checks(tenant, *, estimated_tokens: int, lease_id: str) -> list[Check]:
    """Per-turn limits: tokens per window, a concurrency slot, the monthly budget."""
    org = tenant.organization
    limits = org_limits(org)
    cost = max(int(estimated_tokens), 0)
    checks = []
    if limits["tokens"] > 0:
        checks.append(
            Check("tokens", "gcra", org_key(org.pk, "tok"), limits["tokens"], window_ms(), cost)
        )
    if limits["streams"] > 0:
        lease_ms = float(settings.RATE_LIMIT_LEASE_TTL_SECONDS) * 1000
        checks.append(
            Check(
                "concurrency",
                "conc",
                org_key(org.pk, "conc"),
                limits["streams"],
                lease_ms,
                1,
                lease_id,
            )
        )
    if limits["budget"] > 0:
        label, _, end_ms = month_bounds()
        checks.append(
            Check(
                "budget",
                "budget",
                org_key(org.pk, f"budget:{label}"),
                limits["budget"],
                end_ms,
                cost,
            )
        )
    return checks
