"""Run the scenarios against one or more server configurations and gather the figures."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import uvloop

from bench import extern, scenarios
from bench.stack import SERVERS, ServerConfig, Stack, StackOptions, peak_rss_mb, reset_peak_rss

# What deploy/web.sh serves by default (keep the two in step; bench/README.md says why).
DEFAULT_SERVER = "uvicorn-2"


@dataclass(frozen=True)
class Sizes:
    """How much of each scenario to run."""

    c1_turns: int
    c16_turns_per_worker: int
    c64_turns_per_worker: int  # 0: skip the c64 latency run
    throughput_turns_per_worker: int
    ttft_samples: int
    stream_counts: tuple[int, ...]
    stream_itl_ms: int = 100
    stream_tokens: int = 30


FULL = Sizes(
    c1_turns=150,
    c16_turns_per_worker=16,
    c64_turns_per_worker=8,
    throughput_turns_per_worker=12,
    ttft_samples=100,
    stream_counts=(64, 512),
    # 16 s replies: the server admits streams at its turn rate, so they must last long enough
    # for all 512 to be open upstream at once (fake_anthropic's peak shows whether they were).
    stream_itl_ms=500,
    stream_tokens=32,
)
QUICK = Sizes(
    c1_turns=40,
    c16_turns_per_worker=6,
    c64_turns_per_worker=0,
    throughput_turns_per_worker=4,
    ttft_samples=25,
    stream_counts=(64,),
    stream_itl_ms=50,
    stream_tokens=20,
)
# The smoke test: every piece once, tiny.
TINY = Sizes(
    c1_turns=3,
    c16_turns_per_worker=2,
    c64_turns_per_worker=0,
    throughput_turns_per_worker=2,
    ttft_samples=2,
    stream_counts=(4,),
    stream_itl_ms=10,
    stream_tokens=5,
)

SCENARIOS = ("turns", "streams", "memory", "ratelimit")


async def measure_server(stack: Stack, config: ServerConfig, sizes: Sizes, scenario_names) -> dict:
    """Scenarios 1, 2 and 5 against one server configuration."""
    target = scenarios.Target(stack.base_url, stack.api_key, stack.fake, stack.server_pids())
    log = stack.log
    out: dict = {"server": config.name, "label": config.label}
    await scenarios.warm_up(target)

    if "turns" in scenario_names:
        latency = {}
        runs = [(1, sizes.c1_turns), (16, sizes.c16_turns_per_worker)]
        if sizes.c64_turns_per_worker:
            runs.append((64, sizes.c64_turns_per_worker))
        for concurrency, per_worker in runs:
            result = await scenarios.turn_latency(
                target, concurrency=concurrency, turns_per_worker=per_worker
            )
            latency[f"c{concurrency}"] = result
            log(f"  turns c{concurrency}: added {result['added_ms']} ms, errors {result['errors']}")
            for q in ("p50", "p95", "p99"):
                out[f"overhead_ms_{q}_c{concurrency}"] = result["added_ms"][q]
        app = await scenarios.turn_throughput(
            target, concurrency=64, turns_per_worker=sizes.throughput_turns_per_worker
        )
        direct = await scenarios.turn_throughput(
            target,
            concurrency=64,
            turns_per_worker=sizes.throughput_turns_per_worker,
            direct_only=True,
        )
        log(f"  throughput c64: app {app['turns_per_s']}/s, direct {direct['turns_per_s']}/s")
        out["turns_per_s_c64"] = app["turns_per_s"] if not app["errors"] else None
        out["turns_per_s_c64_with_errors"] = app["turns_per_s"]
        out["direct_turns_per_s_c64"] = direct["turns_per_s"]
        # CPU per turn, by process: what bounds turns/s on 2 shared cores.
        out["server_cpu_ms_per_turn"] = app["cpu_ms_per_turn"]["server"]
        out["loadgen_cpu_ms_per_turn"] = app["cpu_ms_per_turn"]["load_generator"]
        out["loadgen_cpu_ms_per_direct_call"] = direct["cpu_ms_per_turn"]["load_generator"]
        out["turn_errors"] = sum(r["app_errors"] for r in latency.values()) + app["errors"]
        out["detail_turns"] = {"latency": latency, "throughput": app, "direct_throughput": direct}

    if "streams" in scenario_names:
        pids = stack.server_pids()
        reset_peak_rss(pids)
        detail: dict = {}
        for channel in ("sse", "ws"):
            result = await scenarios.ttft(
                target, channel=channel, concurrency=1, samples_per_worker=sizes.ttft_samples
            )
            detail[f"ttft_{channel}"] = result
            log(f"  ttft {channel}: added {result['added_ms']} ms, errors {result['errors']}")
            out[f"ttft_overhead_ms_p50_{channel}"] = result["added_ms"]["p50"]
            out[f"ttft_overhead_ms_p99_{channel}"] = result["added_ms"]["p99"]
        for q in ("p50", "p99"):
            values = [out[f"ttft_overhead_ms_{q}_{c}"] for c in ("sse", "ws")]
            # The worse of the two channels: the target holds for both.
            out[f"ttft_overhead_ms_{q}"] = None if None in values else max(values)
        for count in sizes.stream_counts:
            for channel in ("sse", "ws"):
                result = await scenarios.streams(
                    target,
                    channel=channel,
                    count=count,
                    itl_ms=sizes.stream_itl_ms,
                    tokens=sizes.stream_tokens,
                )
                detail[f"{channel}_{count}"] = result
                out[f"{channel}_streams_ok_{count}"] = result["ok"]
                out[f"{channel}_streams_peak_upstream_{count}"] = result["peak_upstream_streams"]
                log(
                    f"  {count} {channel} streams: {result['ok']} ok, peak upstream "
                    f"{result['peak_upstream_streams']}, errors {result['errors']}"
                )
        rss = peak_rss_mb(pids)
        out["peak_rss_mb"] = rss["max"]
        out["peak_rss_mb_total"] = rss["total"]
        out["server_processes"] = len(pids)
        out["detail_streams"] = detail
    return out


def run(
    *,
    servers: list[str],
    sizes: Sizes,
    scenario_names=SCENARIOS,
    options: StackOptions | None = None,
    quick: bool = False,
    log=None,
) -> dict:
    """Start the stack, measure each server in turn, then the memory and rate-limit figures."""
    started = time.monotonic()
    load_at_start = [round(v, 2) for v in os.getloadavg()]
    stack = Stack(options, log=log)
    results: dict = {"servers": {}}
    with stack:
        for name in servers:
            config = SERVERS[name]
            stack.start_server(config)
            try:
                figures = uvloop.run(measure_server(stack, config, sizes, scenario_names))
            finally:
                stack.stop_server()
            results["servers"][name] = figures
        env = stack.env()
        for key, module in (("memory", "memory.bench"), ("ratelimit", "tenants.ratelimit.bench")):
            if key in scenario_names:
                stack.log(f"{module} ...")
                results[key] = extern.run_in_subprocess(
                    module, env=env, quick=quick, timeout=300 if not quick else 40
                )
                stack.log(f"  {results[key]}")
    primary = DEFAULT_SERVER if DEFAULT_SERVER in results["servers"] else servers[0]
    flat = {k: v for k, v in results["servers"].get(primary, {}).items() if k.startswith(_FLAT)}
    memory = results.get("memory", {})
    ratelimit = results.get("ratelimit", {})
    summary = {
        "server": primary,
        **flat,
        "context_build_ratio_10k_100": memory.get("context_build_ratio_10k_100"),
        "context_token_reduction_200": memory.get("context_token_reduction_200"),
        "ratelimit_decisions_per_s": ratelimit.get("ratelimit_decisions_per_s"),
        **results,
        "setup": {
            "quick": quick,
            "fake_ttft_ms": stack.options.ttft_ms,
            "fake_itl_ms": stack.options.itl_ms,
            "fake_tokens": stack.options.tokens,
            "cpus": os.cpu_count(),
            "load_generator": "this process (asyncio, uvloop, httpx, websockets, anthropic "
            "SDK), on the same cores as the server, PostgreSQL, Redis, Celery and fake_anthropic",
            "duration_s": round(time.monotonic() - started, 1),
            # Other work on the machine skews every figure; this says how busy it was.
            "load_average_at_start": load_at_start,
            "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        },
    }
    return summary


_FLAT = (
    "overhead_ms_",
    "turns_per_s",
    "direct_turns_per_s",
    "turn_errors",
    "ttft_overhead_ms_",
    "sse_streams_ok_",
    "ws_streams_ok_",
    "sse_streams_peak_",
    "ws_streams_peak_",
    "peak_rss_mb",
    "server_cpu_ms_per_turn",
    "loadgen_cpu_ms_",
)
