"""The active-prompt cache: Django's cache (Redis when configured) keyed by generation epochs.

Every (scope, name) pair, where scope is an organisation id or ``global``, has an epoch counter
that is never expired. A cached entry for (organisation, name) lives under a key that contains
both the organisation's and the global epoch for that name, as read BEFORE the database read
that produced it. A change bumps the epoch (``cache.incr``) after its transaction commits, so:

- the very next lookup in any process reads the new epoch, misses, and reads the database;
- a reader that raced the change (read the old epoch, then the old row) writes its stale value
  under the old epoch's key, which nobody reads any more. It cannot put the old version back.

A lookup that runs in the microseconds between the commit and the bump may still be served the
old version; the bump happens inside the committing request, before its response, so every turn
that starts after an operator sees "activated" gets the new version.

The TTL on entries only bounds memory; correctness never depends on it. If the cache is down the
caller reads the database: a turn never fails because of the cache. After a failure this process
skips the cache for ``PROMPT_CACHE_RETRY_SECONDS`` so a dead Redis costs one timeout, not one per
turn.
"""

import threading
import time
from typing import Any

import structlog
from django.conf import settings
from django.core.cache import cache
from prometheus_client import Counter

log = structlog.get_logger(__name__)

PROMPT_CACHE_LOOKUPS = Counter(
    "llm_prompt_cache_lookups_total",
    "Active-prompt cache lookups by result (hit, miss, error, bypass).",
    ["result"],
)

GLOBAL_SCOPE = "global"
_MISS = object()  # a cached None ("no such prompt") is a hit, so misses need their own marker
_down_until = 0.0
_down_lock = threading.Lock()


def _ttl() -> int:
    return getattr(settings, "PROMPT_CACHE_TTL_SECONDS", 24 * 3600)


def _retry_seconds() -> float:
    return getattr(settings, "PROMPT_CACHE_RETRY_SECONDS", 5.0)


def _mark_down(error: Exception, event: str) -> None:
    global _down_until
    with _down_lock:
        _down_until = time.monotonic() + _retry_seconds()
    log.warning(event, error=type(error).__name__)


def cache_available() -> bool:
    return time.monotonic() >= _down_until


def cache_reset_breaker() -> None:
    """Forget a past cache failure (tests, and after an operator fixed Redis)."""
    global _down_until
    _down_until = 0.0


def scope_of(organization_id) -> str:
    return str(organization_id) if organization_id else GLOBAL_SCOPE


def epoch_key(scope: str, name: str) -> str:
    return f"prompts:epoch:{scope}:{name}"


def entry_key(org_scope: str, name: str, org_epoch: int, global_epoch: int) -> str:
    return f"prompts:active:{org_scope}:{name}:{org_epoch}:{global_epoch}"


def _epochs(keys: list[str]) -> list[int]:
    """Current epochs for ``keys``, creating missing ones.

    A missing epoch (first use, eviction, flush) starts at the current time in nanoseconds, not
    at 0: an entry cached under an earlier epoch can then never be mistaken for current.
    ``cache.add`` is atomic, so two processes starting an epoch agree on one value.
    """
    found = cache.get_many(keys)
    missing = [k for k in keys if k not in found]
    for key in missing:
        cache.add(key, time.time_ns(), timeout=None)
    if missing:
        found.update(cache.get_many(missing))
    return [int(found[k]) for k in keys]


def cached_lookup(organization_id, name: str, load) -> Any:
    """``load()`` through the cache for the (organisation, name) pair.

    ``load`` reads the database and returns a picklable value (None included). Any cache error
    falls back to ``load()``.
    """
    if not cache_available():
        PROMPT_CACHE_LOOKUPS.labels("bypass").inc()
        return load()
    org_scope = scope_of(organization_id)
    try:
        org_epoch, global_epoch = _epochs(
            [epoch_key(org_scope, name), epoch_key(GLOBAL_SCOPE, name)]
        )
        key = entry_key(org_scope, name, org_epoch, global_epoch)
        hit = cache.get(key, default=_MISS)
    except Exception as error:  # any backend failure: serve from the database
        _mark_down(error, "prompt.cache_unavailable")
        PROMPT_CACHE_LOOKUPS.labels("error").inc()
        return load()
    if hit is not _MISS:
        PROMPT_CACHE_LOOKUPS.labels("hit").inc()
        return hit
    PROMPT_CACHE_LOOKUPS.labels("miss").inc()
    value = load()
    try:
        cache.set(key, value, timeout=_ttl())
    except Exception as error:
        _mark_down(error, "prompt.cache_unavailable")
    return value


def cache_invalidate(organization_id, name: str) -> None:
    """Bump the epoch of (scope, name). Call it after commit (``transaction.on_commit``).

    A global prompt's epoch is part of every organisation's key for that name, so bumping it
    invalidates all of them at once.
    """
    key = epoch_key(scope_of(organization_id), name)
    try:
        try:
            cache.incr(key)
        except ValueError:
            # No epoch yet (never read, evicted, flushed): any fresh value differs from what an
            # older entry was stored under.
            cache.set(key, time.time_ns(), timeout=None)
    except Exception as error:
        # The change is committed; readers fall back to the database while the cache is down.
        # Entries cached before the outage may be served until their TTL if it comes back.
        log.error("prompt.cache_invalidate_failed", name=name, error=type(error).__name__)
        return
    log.info("prompt.cache_invalidated", scope=scope_of(organization_id), name=name)
