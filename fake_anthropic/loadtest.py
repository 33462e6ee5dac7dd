"""Hold N concurrent streams against one fake_anthropic process and time them.

    python -m fake_anthropic.loadtest --streams 1000 --itl-ms 50 --tokens 40

Starts its own server (unless ``--url`` is given), opens every stream at once with aiohttp,
reads each to ``message_stop`` and prints the wall time, the server's peak of concurrently
active streams and per-stream latency percentiles. The pytest suite uses ``run_load``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field

import aiohttp

from fake_anthropic.testing import start_fake_anthropic


@dataclass
class LoadResult:
    streams: int
    completed: int = 0
    failures: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    texts: set[str] = field(default_factory=set)

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _one(
    session: aiohttp.ClientSession, url: str, api_key: str, body: dict, result: LoadResult
) -> None:
    started = time.perf_counter()
    headers = {"x-api-key": api_key, "anthropic-version": "2023-06-01"}
    parts: list[str] = []
    saw_stop = False
    try:
        async with session.post(url + "/v1/messages", json=body, headers=headers) as response:
            if response.status != 200:
                result.failures.append(f"status {response.status}")
                return
            event = None
            async for raw in response.content:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "content_block_delta":
                    parts.append(json.loads(line[6:])["delta"]["text"])
                elif line.startswith("data: ") and event == "message_stop":
                    saw_stop = True
    except (TimeoutError, aiohttp.ClientError) as exc:
        result.failures.append(type(exc).__name__)
        return
    if not saw_stop:
        result.failures.append("no message_stop")
        return
    result.completed += 1
    result.latencies.append(time.perf_counter() - started)
    result.texts.add("".join(parts))


async def run_load(
    url: str, *, streams: int, itl_ms: int, tokens: int, api_key: str = "fake-key"
) -> LoadResult:
    """Open ``streams`` streams at once; each asks for ``tokens`` tokens ``itl_ms`` apart."""
    result = LoadResult(streams=streams)
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": tokens + 10,
        "stream": True,
        "messages": [
            {
                "role": "user",
                "content": f"Load test. [[fake:itl-ms={itl_ms}]] [[fake:tokens={tokens}]]",
            }
        ],
    }
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=120, sock_connect=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(_one(session, url, api_key, body, result) for _ in range(streams)))
        result.wall_seconds = time.perf_counter() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m fake_anthropic.loadtest")
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--itl-ms", type=int, default=50)
    parser.add_argument("--tokens", type=int, default=40)
    parser.add_argument("--url", default=None, help="an already running server")
    args = parser.parse_args()
    fake = None if args.url else start_fake_anthropic()
    url = args.url or fake.url
    try:
        result = asyncio.run(
            run_load(url, streams=args.streams, itl_ms=args.itl_ms, tokens=args.tokens)
        )
        peak = fake.stats()["peak_active_streams"] if fake else "n/a"
    finally:
        if fake:
            fake.stop()
    print(
        f"streams={result.streams} completed={result.completed} failures={len(result.failures)} "
        f"wall={result.wall_seconds:.2f}s peak_active={peak} "
        f"latency p50={result.percentile(0.5):.2f}s p99={result.percentile(0.99):.2f}s "
        f"max={max(result.latencies, default=0):.2f}s "
        f"mean={statistics.fmean(result.latencies) if result.latencies else 0:.2f}s"
    )


if __name__ == "__main__":
    main()
