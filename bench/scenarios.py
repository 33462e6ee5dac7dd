"""Scenarios 1 and 2: chat turns through the app against the same request sent straight to the
model, in the same run.

Interleaving: at concurrency ``c`` there are ``c`` workers; each sends its app turn and its direct
SDK call at the same moment (``asyncio.gather``) and waits for both. So the app always has ``c``
turns in flight, and every direct sample is taken under the same machine load as its app sample
(the load generator, fake_anthropic, PostgreSQL and Redis share the 2 cores with the server).

Each worker uses its own conversations (two turns at once in one conversation are refused with
409 by design), created before the clock starts; a worker moves to a new conversation every
``TURNS_PER_CONVERSATION`` turns so the context sent to the model stays the same size.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field

from bench.clients import AppClient, Direct, Outcome, WsChat
from bench.stack import cpu_seconds
from bench.stats import added_ms, ms, summary_ms, top_errors
from fake_anthropic.testing import FakeAnthropic

TURNS_PER_CONVERSATION = 8
QUESTION = "why does the latency a backend adds matter for a chat product?"


@dataclass
class Target:
    base_url: str
    api_key: str
    fake: FakeAnthropic
    server_pids: list[int] = field(default_factory=list)


class CpuMeter:
    """CPU seconds used during a block by the server processes, fake_anthropic and this
    process (the load generator): what each turn costs, whatever the wall clock says."""

    def __init__(self, target: Target) -> None:
        self.groups = {
            "server": list(target.server_pids),
            "fake": [target.fake.process.pid] if hasattr(target.fake, "process") else [],
        }
        self.used: dict[str, float] = {}

    def __enter__(self) -> CpuMeter:
        self._start = {name: cpu_seconds(pids) for name, pids in self.groups.items()}
        self._self = time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        for name, pids in self.groups.items():
            self.used[name] = cpu_seconds(pids) - self._start[name]
        self.used["load_generator"] = time.process_time() - self._self

    def per(self, count: int) -> dict[str, float | None]:
        """CPU ms per unit of work, by process group."""
        if not count:
            return {name: None for name in self.used}
        return {name: round(value * 1000 / count, 2) for name, value in self.used.items()}


async def _conversations(app: AppClient, count: int, concurrency: int = 32) -> list:
    """``count`` fresh conversations, created ``concurrency`` at a time."""
    ids: list = []
    for start in range(0, count, concurrency):
        batch = min(concurrency, count - start)
        ids += await asyncio.gather(*(app.conversation_create() for _ in range(batch)))
    return ids


def _split(outcomes: list[Outcome], attr: str = "total") -> tuple[list[float], list[str]]:
    values = [getattr(o, attr) for o in outcomes if o.ok and getattr(o, attr) is not None]
    errors = [o.error for o in outcomes if not o.ok]
    return values, errors


def _compare(app: list[Outcome], direct: list[Outcome], attr: str) -> dict:
    app_values, app_errors = _split(app, attr)
    direct_values, direct_errors = _split(direct, attr)
    return {
        "samples": len(app),
        "app_errors": len(app_errors),
        "direct_errors": len(direct_errors),
        "app_ms": summary_ms(app_values),
        "direct_ms": summary_ms(direct_values),
        "added_ms": added_ms(app_values, direct_values),
        "errors": top_errors(app_errors + direct_errors),
    }


# --- scenario 1: non-streaming turns ------------------------------------------------------------
async def turn_latency(target: Target, *, concurrency: int, turns_per_worker: int) -> dict:
    """Added latency of a non-streaming turn at ``concurrency``: p50/p95/p99 of the app minus
    those of the direct path, sampled in pairs."""
    app = AppClient(target.base_url, target.api_key, connections=concurrency + 8)
    direct = Direct(target.fake.url)
    try:
        per_worker = math.ceil(turns_per_worker / TURNS_PER_CONVERSATION)
        conversations = await _conversations(app, concurrency * per_worker)
        app_out: list[Outcome] = []
        direct_out: list[Outcome] = []

        async def worker(w: int) -> None:
            mine = conversations[w * per_worker : (w + 1) * per_worker]
            for i in range(turns_per_worker):
                content = f"Turn {w}.{i}: {QUESTION}"
                a, d = await asyncio.gather(
                    app.turn(mine[i // TURNS_PER_CONVERSATION], content), direct.turn(content)
                )
                app_out.append(a)
                direct_out.append(d)

        started = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        result = {"concurrency": concurrency, **_compare(app_out, direct_out, "total")}
        result["wall_s"] = round(time.perf_counter() - started, 2)
        return result
    finally:
        await app.aclose()
        await direct.aclose()


async def turn_throughput(
    target: Target, *, concurrency: int, turns_per_worker: int, direct_only: bool = False
) -> dict:
    """Turns per second with ``concurrency`` turns always in flight (app only, or direct only
    for the ratio): completed turns over the wall time of the whole batch."""
    app = AppClient(target.base_url, target.api_key, connections=concurrency + 8)
    direct = Direct(target.fake.url)
    try:
        per_worker = math.ceil(turns_per_worker / TURNS_PER_CONVERSATION)
        conversations = [] if direct_only else await _conversations(app, concurrency * per_worker)
        outcomes: list[Outcome] = []

        async def worker(w: int) -> None:
            mine = conversations[w * per_worker : (w + 1) * per_worker]
            for i in range(turns_per_worker):
                content = f"Turn {w}.{i}: {QUESTION}"
                if direct_only:
                    outcomes.append(await direct.turn(content))
                else:
                    outcomes.append(await app.turn(mine[i // TURNS_PER_CONVERSATION], content))

        started = time.perf_counter()
        with CpuMeter(target) as cpu:
            await asyncio.gather(*(worker(w) for w in range(concurrency)))
        wall = time.perf_counter() - started
        values, errors = _split(outcomes)
        return {
            "concurrency": concurrency,
            "turns": len(outcomes),
            "errors": len(errors),
            "turns_per_s": round(len(values) / wall, 1),
            "cpu_ms_per_turn": cpu.per(len(outcomes)),
            "latency_ms": summary_ms(values),
            "error_samples": top_errors(errors),
            "wall_s": round(wall, 2),
        }
    finally:
        await app.aclose()
        await direct.aclose()


# --- scenario 2: streaming ------------------------------------------------------------------------
async def ttft(target: Target, *, channel: str, concurrency: int, samples_per_worker: int) -> dict:
    """Added time to first token through ``channel`` ("sse" or "ws") against a direct SDK stream,
    sampled in pairs."""
    app = AppClient(target.base_url, target.api_key, connections=concurrency + 8)
    direct = Direct(target.fake.url)
    sockets: list[WsChat] = []
    try:
        per_worker = math.ceil(samples_per_worker / TURNS_PER_CONVERSATION)
        conversations = await _conversations(app, concurrency * per_worker)
        if channel == "ws":
            sockets = [WsChat(target.base_url, target.api_key) for _ in range(concurrency)]
            await asyncio.gather(*(s.connect() for s in sockets))
        app_out: list[Outcome] = []
        direct_out: list[Outcome] = []

        async def worker(w: int) -> None:
            mine = conversations[w * per_worker : (w + 1) * per_worker]
            for i in range(samples_per_worker):
                content = f"Stream {w}.{i}: {QUESTION}"
                conversation = mine[i // TURNS_PER_CONVERSATION]
                if channel == "ws":
                    turn = sockets[w].turn(conversation, content)
                else:
                    turn = app.sse_turn(conversation, content)
                a, d = await asyncio.gather(turn, direct.stream(content))
                app_out.append(a)
                direct_out.append(d)

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        result = {"channel": channel, "concurrency": concurrency}
        result.update(_compare(app_out, direct_out, "ttft"))
        result["total_added_ms"] = _compare(app_out, direct_out, "total")["added_ms"]
        return result
    finally:
        for s in sockets:
            await s.aclose()
        await app.aclose()
        await direct.aclose()


async def streams(
    target: Target, *, channel: str, count: int, itl_ms: int = 100, tokens: int = 30
) -> dict:
    """``count`` streams started at the same moment, each lasting about ``tokens * itl_ms``
    (a per-request fake_anthropic directive) so that they really overlap; counts those that end
    with ``done`` and no error. fake_anthropic's peak of concurrently open upstream streams
    shows how many were in flight at once."""
    app = AppClient(target.base_url, target.api_key, connections=count + 8)
    sockets: list[WsChat] = []
    failures: list[str] = []
    try:
        conversations = await _conversations(app, count)
        if channel == "ws":
            sockets = [WsChat(target.base_url, target.api_key) for _ in range(count)]
            opened = await asyncio.gather(*(s.connect() for s in sockets), return_exceptions=True)
            failures += [f"connect {type(e).__name__}: {e}"[:200] for e in opened if e is not None]
        await asyncio.to_thread(target.fake.reset)
        go = asyncio.Event()
        suffix = f"[[fake:itl-ms={itl_ms}]] [[fake:tokens={tokens}]]"

        async def one(i: int) -> Outcome:
            await go.wait()
            content = f"Stream {i}: {QUESTION} {suffix}"
            if channel == "ws":
                if sockets[i].ws is None:
                    return Outcome(error="not connected")
                return await sockets[i].turn(conversations[i], content)
            return await app.sse_turn(conversations[i], content)

        tasks = [asyncio.create_task(one(i)) for i in range(count)]
        await asyncio.sleep(0)
        started = time.perf_counter()
        go.set()
        outcomes = await asyncio.gather(*tasks)
        wall = time.perf_counter() - started
        stats = await asyncio.to_thread(target.fake.stats)
        ttfts, errors = _split(outcomes, "ttft")
        totals, _ = _split(outcomes, "total")
        errors = [e for e in errors if e != "not connected"] + failures
        return {
            "channel": channel,
            "streams": count,
            "ok": sum(1 for o in outcomes if o.ok),
            "errors": top_errors(errors),
            "peak_upstream_streams": stats.get("peak_active_streams"),
            "ttft_ms": summary_ms(ttfts),
            "total_ms": summary_ms(totals),
            "wall_s": round(wall, 2),
            "stream_ms": ms(tokens * itl_ms / 1000),
        }
    finally:
        await asyncio.gather(*(s.aclose() for s in sockets), return_exceptions=True)
        await app.aclose()


async def warm_up(target: Target, *, turns: int = 6) -> None:
    """A few turns of each kind, discarded: first-use costs (imports, pools, caches) are not
    what the figures are about."""
    await turn_latency(target, concurrency=2, turns_per_worker=turns // 2)
    await ttft(target, channel="sse", concurrency=2, samples_per_worker=2)
    await ttft(target, channel="ws", concurrency=2, samples_per_worker=2)
