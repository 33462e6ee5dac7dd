"""The decision types and the in-memory backend (the same algorithm as ``decide.lua``).

A decision is a list of ``Check``s evaluated all or nothing: GCRA buckets (requests and tokens
per window), a concurrency set of leases scored by expiry, and a budget counter. The in-memory
backend serves the embedded default (no ``REDIS_URL``) and fail-open mode; it is per process.
"""

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["gcra", "conc", "budget"]
Op = Literal["admit", "settle"]

# Rounding slack of TAT sums, in ms (as in decide.lua).
EPS_MS = 0.01


@dataclass(frozen=True)
class Check:
    """One limit applied to one decision.

    ``period_ms`` is the window (gcra), the lease TTL (conc) or the end of the budget period in
    ms since the epoch (budget); ``member`` is the lease id (conc); ``cost`` the units consumed
    (in a settlement: used minus reserved).
    """

    scope: str
    kind: Kind
    key: str
    limit: int
    period_ms: float
    cost: int = 1
    member: str = ""

    def with_cost(self, cost: int) -> "Check":
        return Check(self.scope, self.kind, self.key, self.limit, self.period_ms, cost, self.member)


@dataclass(frozen=True)
class CheckResult:
    check: Check
    ok: bool
    remaining: int
    reset_ms: int
    retry_ms: int


@dataclass
class Decision:
    allowed: bool
    now_ms: int
    results: list[CheckResult] = field(default_factory=list)
    # "redis", "memory" (embedded) or "fallback" (memory because Redis is unavailable).
    source: str = "redis"

    @property
    def refused(self) -> list[CheckResult]:
        return [r for r in self.results if not r.ok]


def encode_args(op: Op, checks: list[Check]) -> tuple[list[str], list]:
    """KEYS and ARGV for decide.lua."""
    argv: list = [op]
    for c in checks:
        argv += [c.kind, c.limit, repr(float(c.period_ms)), c.member, c.cost]
    return [c.key for c in checks], argv


def decode_reply(checks: list[Check], reply: list) -> Decision:
    allowed, now_ms = int(reply[0]), int(reply[1])
    results = []
    for i, check in enumerate(checks):
        ok, remaining, reset, retry = (int(v) for v in reply[2 + 4 * i : 6 + 4 * i])
        results.append(CheckResult(check, bool(ok), remaining, reset, retry))
    return Decision(allowed=bool(allowed), now_ms=now_ms, results=results)


class MemoryBackend:
    """decide.lua in Python, under one lock, on this process's clock."""

    _PRUNE_EVERY = 10_000

    def __init__(self):
        self._lock = threading.Lock()
        # key -> [value, expires_at_ms]; value is a TAT (float), a dict of leases or a count.
        self._data: dict[str, list] = {}
        self._ops = 0

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def _get(self, key: str, now: float):
        entry = self._data.get(key)
        if entry is None or entry[1] <= now:
            return None
        return entry[0]

    def decide(self, checks: list[Check], op: Op = "admit") -> Decision:
        with self._lock:
            now = time.time() * 1000
            self._ops += 1
            if self._ops % self._PRUNE_EVERY == 0:
                self._data = {k: v for k, v in self._data.items() if v[1] > now}
            if op == "settle":
                self._settle(checks, now)
                return Decision(allowed=True, now_ms=int(now), source="memory")
            return self._admit(checks, now)

    def _settle(self, checks: list[Check], now: float) -> None:
        for c in checks:
            if c.kind == "gcra" and c.cost:
                interval = c.period_ms / c.limit
                tat = self._get(c.key, now) or now
                if c.cost > 0:
                    new_tat = max(tat, now) + c.cost * interval
                else:
                    new_tat = max(tat + c.cost * interval, now)
                if new_tat > now:
                    self._data[c.key] = [new_tat, new_tat + 1000]
                else:
                    self._data.pop(c.key, None)
            elif c.kind == "conc":
                leases = self._get(c.key, now)
                if leases:
                    leases.pop(c.member, None)
            elif c.kind == "budget" and c.cost:
                entry = self._data.get(c.key)
                if entry is not None:
                    entry[0] = max(entry[0] + c.cost, 0)

    def _admit(self, checks: list[Check], now: float) -> Decision:
        # Rows as in decide.lua: ok, (remaining, reset) if admitted, (remaining, reset) now, retry.
        rows, writes = [], []
        for c in checks:
            if c.kind == "gcra":
                interval = c.period_ms / c.limit
                tat = max(self._get(c.key, now) or now, now)
                rem_now = math.floor((c.period_ms - (tat - now)) / interval + EPS_MS)
                allow_at = tat + min(c.cost, c.limit) * interval - c.period_ms
                if allow_at > now + EPS_MS:
                    row = (False, 0, 0, rem_now, math.ceil(tat - now), math.ceil(allow_at - now))
                else:
                    new_tat = tat + c.cost * interval
                    rem = math.floor((c.period_ms - (new_tat - now)) / interval + EPS_MS)
                    row = (True, rem, math.ceil(new_tat - now), rem_now, math.ceil(tat - now), 0)
                    writes.append((c, new_tat))
            elif c.kind == "conc":
                leases = {m: e for m, e in (self._get(c.key, now) or {}).items() if e > now}
                self._data[c.key] = [leases, now + c.period_ms + 1000]
                if len(leases) >= c.limit:
                    retry = max(min(math.ceil(min(leases.values()) - now), 1000), 1)
                    row = (False, 0, 0, 0, 0, retry)
                else:
                    row = (True, c.limit - len(leases) - 1, 0, c.limit - len(leases), 0, 0)
                    writes.append((c, now + c.period_ms))
            else:
                used = self._get(c.key, now) or 0
                reset = math.ceil(c.period_ms - now)
                rem_now = max(c.limit - used, 0)
                if used + c.cost > c.limit:
                    row = (False, 0, 0, rem_now, reset, reset)
                else:
                    row = (True, c.limit - used - c.cost, reset, rem_now, reset, 0)
                    writes.append((c, used + c.cost))
            rows.append(row)
        allowed = all(row[0] for row in rows)
        results = [
            CheckResult(c, row[0], *(row[1:3] if allowed else row[3:5]), row[5])
            for c, row in zip(checks, rows, strict=True)
        ]
        if allowed:
            for c, value in writes:
                if c.kind == "gcra":
                    self._data[c.key] = [value, value + 1000]
                elif c.kind == "conc":
                    self._data[c.key][0][c.member] = value
                    self._data[c.key][1] = value + 1000
                else:
                    self._data[c.key] = [value, c.period_ms + 31 * 86_400_000]
        return Decision(allowed=allowed, now_ms=int(now), results=results, source="memory")
