"""Start ``python -m fake_anthropic`` as a subprocess, for tests, benchmarks and ``make run``.

    with start_fake_anthropic(itl_ms=5) as fake:
        client = AsyncAnthropic(base_url=fake.url, api_key=fake.api_key)
        ...
        assert fake.stats()["streams_completed"] == 1

The pytest fixture ``fake_anthropic_server`` (session scope) yields one such server for a whole
test run; import it into a conftest: ``from fake_anthropic.testing import fake_anthropic_server``.
The server is given ``--port 0`` (unless a port is asked for) and reports the port it bound on
its first line of output, so there is no race for a free port.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

_LISTENING = re.compile(r"listening on (http://\S+)")
_ROOT = Path(__file__).resolve().parent.parent


class FakeAnthropic:
    """A running fake server: its ``url``, the ``api_key`` to use, counters and ``stop()``."""

    def __init__(self, process: subprocess.Popen[str], url: str, api_key: str) -> None:
        self.process = process
        self.url = url
        self.api_key = api_key

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def _call(self, method: str, path: str) -> dict[str, Any]:
        request = urllib.request.Request(
            self.url + path, method=method, data=b"" if method == "POST" else None
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    def stats(self) -> dict[str, Any]:
        """The server's counters (``GET /_fake/stats``)."""
        return self._call("GET", "/_fake/stats")

    def reset(self) -> dict[str, Any]:
        """Zero the counters, forget ``fail-first`` counts, empty the prompt cache."""
        return self._call("POST", "/_fake/reset")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def __enter__(self) -> FakeAnthropic:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _drain(stream: Any) -> None:
    for _ in iter(stream.readline, ""):
        pass


def start_fake_anthropic(
    *,
    port: int | None = None,
    api_key: str | None = None,
    ttft_ms: int = 0,
    itl_ms: int = 0,
    tokens: int | None = None,
    host: str = "127.0.0.1",
    startup_timeout: float = 15.0,
) -> FakeAnthropic:
    """Start the server in a subprocess and wait until it answers."""
    command = [sys.executable, "-m", "fake_anthropic", "--host", host, "--port", str(port or 0)]
    command += ["--ttft-ms", str(ttft_ms), "--itl-ms", str(itl_ms)]
    if tokens is not None:
        command += ["--tokens", str(tokens)]
    if api_key:
        command += ["--api-key", api_key]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_ROOT), env.get("PYTHONPATH")]))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=_ROOT)
    assert process.stdout is not None
    deadline = time.monotonic() + startup_timeout
    line = ""
    while not line:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or process.poll() is not None:
            process.kill()
            raise RuntimeError(f"fake_anthropic did not start (exit code {process.poll()})")
        ready, _, _ = select.select([process.stdout], [], [], min(remaining, 0.5))
        if ready:
            line = process.stdout.readline()
    match = _LISTENING.search(line)
    if not match:
        process.kill()
        raise RuntimeError(f"unexpected first line from fake_anthropic: {line!r}")
    # Keep reading stdout so the child can never block on a full pipe.
    threading.Thread(target=_drain, args=(process.stdout,), daemon=True).start()
    fake = FakeAnthropic(process, match.group(1), api_key or "fake-key")
    while True:
        try:
            fake.stats()
            return fake
        except OSError:
            if time.monotonic() > deadline:
                fake.stop()
                raise
            time.sleep(0.05)


try:
    import pytest
except ImportError:  # pragma: no cover - the fixture is for the test suite only
    pass
else:

    @pytest.fixture(scope="session")
    def fake_anthropic_server():
        """One fake_anthropic process for the whole test session."""
        with start_fake_anthropic() as fake:
            yield fake
