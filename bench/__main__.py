"""``python -m bench [--quick] [--json] [--servers ...] [--scenarios ...]``: see bench/README.md."""

from __future__ import annotations

import argparse
import json
import sys

from bench.runner import DEFAULT_SERVER, FULL, QUICK, SCENARIOS, run
from bench.stack import SERVERS, StackOptions


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Benchmark the chat path against the direct path."
    )
    parser.add_argument("--quick", action="store_true", help="a smaller run, under a minute")
    parser.add_argument("--json", action="store_true", help="print one JSON object, no table")
    parser.add_argument(
        "--servers",
        default=None,
        help=f"comma-separated of {', '.join(SERVERS)} (default: all; --quick: {DEFAULT_SERVER})",
    )
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help=f"comma-separated of {SCENARIOS}"
    )
    parser.add_argument("--ttft-ms", type=int, default=20, help="fake_anthropic time to 1st token")
    parser.add_argument("--itl-ms", type=int, default=2, help="fake_anthropic delay between deltas")
    parser.add_argument("--tokens", type=int, default=12, help="fake_anthropic reply length")
    parser.add_argument("--db-name", default="llmapp_bench", help="database created afresh")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/7", help="flushed first")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    servers = (args.servers or (DEFAULT_SERVER if args.quick else ",".join(SERVERS))).split(",")
    unknown = [s for s in servers if s not in SERVERS]
    scenario_names = tuple(args.scenarios.split(","))
    if unknown or not set(scenario_names) <= set(SCENARIOS):
        print(f"unknown server or scenario: {unknown or scenario_names}", file=sys.stderr)
        return 2
    options = StackOptions(
        db_name=args.db_name,
        redis_url=args.redis_url,
        ttft_ms=args.ttft_ms,
        itl_ms=args.itl_ms,
        tokens=args.tokens,
    )
    figures = run(
        servers=servers,
        sizes=QUICK if args.quick else FULL,
        scenario_names=scenario_names,
        options=options,
        quick=args.quick,
    )
    if args.json:
        print(json.dumps(figures, default=str))
    else:
        from bench.report import render

        print(render(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
