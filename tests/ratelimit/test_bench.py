"""The bench function runs the Lua path and reports a rate (the figure itself is for bench/)."""

from tenants.ratelimit.bench import ratelimit_bench


def test_bench_reports_decisions_per_second(redis_url, rclient):
    result = ratelimit_bench(decisions=400, concurrency=8, batch=50, orgs=10)
    assert result["ratelimit_decisions_per_s"] > 0
    assert result["async_decisions_per_s"] > 0
    assert result["decisions"] == 400
    assert not list(rclient.scan_iter(match="rl:{bench-*"))
