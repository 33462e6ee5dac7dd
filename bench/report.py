"""The printed table: one row per figure, one column per server, and the target beside it."""

from __future__ import annotations

# (key, label, target text, "le" when lower is better / "ge" when higher is, target value)
ROWS = [
    ("overhead_ms_p50_c1", "added latency p50, c1 (ms)", "le", 5),
    ("overhead_ms_p95_c1", "added latency p95, c1 (ms)", None, None),
    ("overhead_ms_p99_c1", "added latency p99, c1 (ms)", None, None),
    ("overhead_ms_p50_c16", "added latency p50, c16 (ms)", None, None),
    ("overhead_ms_p95_c16", "added latency p95, c16 (ms)", None, None),
    ("overhead_ms_p99_c16", "added latency p99, c16 (ms)", "le", 25),
    ("overhead_ms_p50_c64", "added latency p50, c64 (ms)", None, None),
    ("overhead_ms_p95_c64", "added latency p95, c64 (ms)", None, None),
    ("overhead_ms_p99_c64", "added latency p99, c64 (ms)", None, None),
    ("turns_per_s_c64", "turns/s, c64", "ge", 250),
    ("direct_turns_per_s_c64", "direct SDK calls/s, c64", None, None),
    ("turn_errors", "failed turns", "le", 0),
    ("server_cpu_ms_per_turn", "server CPU per turn (ms)", None, None),
    ("loadgen_cpu_ms_per_turn", "load generator CPU per turn (ms)", None, None),
    ("loadgen_cpu_ms_per_direct_call", "load generator CPU per direct call (ms)", None, None),
    ("ttft_overhead_ms_p50_sse", "added TTFT p50, SSE (ms)", "le", 5),
    ("ttft_overhead_ms_p99_sse", "added TTFT p99, SSE (ms)", None, None),
    ("ttft_overhead_ms_p50_ws", "added TTFT p50, WebSocket (ms)", "le", 5),
    ("ttft_overhead_ms_p99_ws", "added TTFT p99, WebSocket (ms)", None, None),
    ("sse_streams_ok_64", "SSE streams ok of 64", "ge", 64),
    ("ws_streams_ok_64", "WebSocket streams ok of 64", "ge", 64),
    ("sse_streams_ok_512", "SSE streams ok of 512", "ge", 512),
    ("ws_streams_ok_512", "WebSocket streams ok of 512", "ge", 512),
    ("sse_streams_peak_upstream_512", "  of which open upstream at once (SSE)", None, None),
    ("ws_streams_peak_upstream_512", "  of which open upstream at once (WS)", None, None),
    ("peak_rss_mb", "peak RSS, one process (MiB)", None, None),
    ("peak_rss_mb_total", "peak RSS, all server processes (MiB)", None, None),
]
GLOBAL_ROWS = [
    ("context_build_ratio_10k_100", "context build time 10k / 100 messages"),
    ("context_token_reduction_200", "share of tokens saved at 200 messages"),
    ("ratelimit_decisions_per_s", "rate-limit decisions/s"),
]


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def _mark(value, op, target) -> str:
    if op is None or value is None:
        return ""
    met = value <= target if op == "le" else value >= target
    return " ok" if met else " MISS"


def render(figures: dict) -> str:
    servers = figures.get("servers", {})
    names = list(servers)
    label_width = max(len(label) for _, label, _, _ in ROWS) + 2
    col = max(14, *(len(servers[n].get("label", n)) + 2 for n in names)) if names else 14
    lines = []
    header = "figure".ljust(label_width) + "target".ljust(10)
    header += "".join(servers[n].get("label", n).rjust(col) for n in names)
    lines += [header, "-" * len(header)]
    for key, label, op, target in ROWS:
        if all(servers[n].get(key) is None for n in names):
            continue
        target_text = "" if op is None else ("<= " if op == "le" else ">= ") + str(target)
        row = label.ljust(label_width) + target_text.ljust(10)
        for n in names:
            value = servers[n].get(key)
            row += (_cell(value) + _mark(value, op, target)).rjust(col)
        lines.append(row)
    lines.append("")
    for key, label in GLOBAL_ROWS:
        lines.append(f"{label.ljust(label_width + 10)}{_cell(figures.get(key)).rjust(col)}")
    for section in ("memory", "ratelimit"):
        error = (figures.get(section) or {}).get("error")
        if error:
            lines.append(f"  ({section}: {error})")
    setup = figures.get("setup", {})
    lines += [
        "",
        f"default server (top-level JSON figures): {figures.get('server')}",
        f"fake_anthropic: ttft {setup.get('fake_ttft_ms')} ms, itl {setup.get('fake_itl_ms')} ms, "
        f"{setup.get('fake_tokens')} tokens; {setup.get('cpus')} CPUs; load generator: "
        f"{setup.get('load_generator')}",
        f"run took {setup.get('duration_s')} s{' (--quick)' if setup.get('quick') else ''}; "
        f"load average {setup.get('load_average_at_start')} at start, "
        f"{setup.get('load_average_at_end')} at end",
    ]
    for n in names:
        for part in ("detail_turns", "detail_streams"):
            for phase, detail in (servers[n].get(part) or {}).items():
                errors = detail.get("errors") if isinstance(detail, dict) else None
                if not isinstance(errors, list):
                    errors = detail.get("error_samples") if isinstance(detail, dict) else None
                if errors:
                    lines.append(f"  {n} {phase} errors: {'; '.join(errors)}")
    return "\n".join(lines)
