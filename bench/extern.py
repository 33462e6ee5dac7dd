"""Scenarios 3 and 4 come from the features that own them: ``memory/bench.py`` and
``tenants/ratelimit/bench.py`` provide functions returning dicts of figures. They run here, in a
subprocess with the bench stack's environment (``python -m bench.extern MODULE [--quick]``), so
Django and its database connection stay out of the load generator's process.

The subprocess prints one JSON object on its last line: the merged figures, or ``{"error": ...}``
when the module is missing or fails. A missing figure is reported as null, never guessed.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import subprocess
import sys
import traceback
from importlib import import_module

from bench.stack import ROOT

# The entry point a module may define; without one, every function of its own named bench_*,
# measure_* or *_bench (``ratelimit_bench``) is called and their dicts are merged.
ENTRY_POINTS = ("run", "bench", "benchmark")
PREFIXES = ("bench_", "measure_")
SUFFIXES = ("_bench",)


def _call(func, quick: bool) -> dict:
    kwargs = {"quick": quick} if "quick" in inspect.signature(func).parameters else {}
    value = func(**kwargs)
    if inspect.isawaitable(value):
        value = asyncio.run(value)
    if not isinstance(value, dict):
        raise TypeError(f"{func.__name__} returned {type(value).__name__}, not a dict")
    return value


def collect(module_name: str, *, quick: bool) -> dict:
    """Import ``module_name`` and merge what its benchmark functions return."""
    module = import_module(module_name)
    for name in ENTRY_POINTS:
        func = getattr(module, name, None)
        if callable(func):
            return _call(func, quick)
    figures: dict = {}
    for name, func in vars(module).items():
        if (
            (name.startswith(PREFIXES) or name.endswith(SUFFIXES))
            and inspect.isfunction(func)
            and func.__module__ == module.__name__
        ):
            figures.update(_call(func, quick))
    if not figures:
        raise LookupError(f"{module_name} has no run() nor bench_*/measure_*/*_bench function")
    return figures


def run_in_subprocess(
    module_name: str, *, env: dict[str, str], quick: bool, timeout: float
) -> dict:
    """Run ``collect`` in a child process with ``env``; errors become ``{"error": ...}``."""
    if not (ROOT / (module_name.replace(".", "/") + ".py")).exists():
        return {"error": f"{module_name.replace('.', '/')}.py is not there yet"}
    command = [sys.executable, "-m", "bench.extern", module_name] + (["--quick"] if quick else [])
    try:
        result = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"{module_name} did not finish in {timeout:.0f} s"}
    lines = result.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": f"{module_name} exited {result.returncode}: {result.stderr[-500:]}"}


def main(argv: list[str]) -> int:
    import django

    module_name, quick = argv[0], "--quick" in argv[1:]
    django.setup()
    try:
        figures = collect(module_name, quick=quick)
    except Exception as exc:  # noqa: BLE001 - reported to the parent as data
        traceback.print_exc()
        figures = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    print(json.dumps(figures, default=str), flush=True)
    return 0


if __name__ == "__main__":
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "llmapp.settings")
    sys.exit(main(sys.argv[1:]))
