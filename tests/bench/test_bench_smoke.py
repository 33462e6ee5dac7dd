"""The benchmark runner's pieces work end to end at a tiny size: a stack on loopback (fresh
database, Redis, Celery worker, fake_anthropic, the server through deploy/web.sh), every scenario
once, the JSON object and the table. Figures are printed, never asserted: this machine is shared
and a latency bound here would only measure the neighbours."""

import json

import pytest

from bench.report import render
from bench.runner import TINY, run
from bench.stack import StackOptions

pytestmark = pytest.mark.slow


def test_runner_measures_every_scenario_at_a_tiny_size(capsys):
    options = StackOptions(db_name="llmapp_bench_smoke", ttft_ms=5, itl_ms=1, tokens=5)
    figures = run(servers=["uvicorn"], sizes=TINY, options=options, quick=True)

    server = figures["servers"]["uvicorn"]
    # Every turn and stream went through the real path and completed.
    assert server["turn_errors"] == 0, server["detail_turns"]
    assert server["sse_streams_ok_4"] == 4, server["detail_streams"]["sse_4"]
    assert server["ws_streams_ok_4"] == 4, server["detail_streams"]["ws_4"]
    for key in ("overhead_ms_p50_c1", "overhead_ms_p99_c16", "turns_per_s_c64"):
        assert isinstance(figures[key], float), key
    for key in ("ttft_overhead_ms_p50_sse", "ttft_overhead_ms_p50_ws", "peak_rss_mb"):
        assert isinstance(server[key], float), key
    # The upstream really saw the app's streams (not a shortcut around the model).
    assert server["detail_streams"]["sse_4"]["peak_upstream_streams"] >= 1
    # Memory and rate-limit figures are present as keys: a number, or null when not provided.
    for key in ("context_build_ratio_10k_100", "ratelimit_decisions_per_s"):
        assert key in figures

    json.dumps(figures)
    with capsys.disabled():
        print("\n" + render(figures))
