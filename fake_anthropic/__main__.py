"""``python -m fake_anthropic --port N``: serve the fake Messages API until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from fake_anthropic.knobs import Knobs
from fake_anthropic.server import Config, serve


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m fake_anthropic", description="A local Anthropic Messages API."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900, help="0 picks a free port")
    parser.add_argument("--api-key", default=None, help="accept only this key (default: any)")
    parser.add_argument("--ttft-ms", type=int, default=0, help="delay before the first delta")
    parser.add_argument("--itl-ms", type=int, default=0, help="delay between deltas")
    parser.add_argument("--tokens", type=int, default=40, help="length of a default reply")
    parser.add_argument(
        "--cache-min-tokens", type=int, default=0, help="shortest prefix that is cached"
    )
    return parser.parse_args(argv)


async def _main(args: argparse.Namespace) -> None:
    config = Config(
        api_key=args.api_key or None,
        defaults=Knobs(ttft_ms=args.ttft_ms, itl_ms=args.itl_ms, tokens=args.tokens),
        cache_min_tokens=args.cache_min_tokens,
    )
    runner, port = await serve(config, host=args.host, port=args.port)
    # The one line a parent process (fake_anthropic.testing) reads to learn the port.
    print(
        f"fake_anthropic listening on http://{args.host}:{port} "
        f"(ttft_ms={args.ttft_ms} itl_ms={args.itl_ms} tokens={args.tokens} "
        f"api_key={'set' if args.api_key else 'any'})",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        asyncio.run(_main(args))
    else:
        uvloop.run(_main(args))
    sys.exit(0)


if __name__ == "__main__":
    main()
