"""One fake_anthropic process holds 1,000 concurrent streams."""

import pytest

from fake_anthropic.loadtest import run_load
from fake_anthropic.testing import start_fake_anthropic

STREAMS = 1000


@pytest.mark.slow
async def test_one_process_holds_a_thousand_concurrent_streams():
    with start_fake_anthropic() as fake:
        # 40 tokens are ~27 deltas; 50 ms apart, each stream lasts over a second, so all overlap.
        result = await run_load(fake.url, streams=STREAMS, itl_ms=50, tokens=40)
        stats = fake.stats()
    print(
        f"\n{STREAMS} concurrent streams: wall {result.wall_seconds:.2f}s, "
        f"peak active {stats['peak_active_streams']}, p99 {result.percentile(0.99):.2f}s"
    )
    assert result.failures == []
    assert result.completed == STREAMS
    assert stats["streams_completed"] == STREAMS
    assert stats["client_disconnects"] == 0
    # They really were open at the same time, not served one after another.
    assert stats["peak_active_streams"] >= 0.9 * STREAMS
    assert len(result.texts) == 1  # same request, same (complete) reply
    assert result.wall_seconds < 20
