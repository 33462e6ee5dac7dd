"""PostgreSQL unavailable: the chat endpoints answer 503 ``database_unavailable`` quickly, on
the DRF path and on the async (turn) path alike, never a hang or a bare 500.

The app runs in a subprocess whose ``DATABASE_URL`` points at a closed port, so the real pool,
the real connect timeout and the real error mapping are what is tested."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
WELL_FORMED_KEY = "llm_abcdefghij_" + "x" * 43
SOME_ID = "3fc35cd7-b7bb-4df1-a548-120bfb35eff0"


@pytest.fixture(scope="module")
def app_without_database():
    port, dead_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{dead_port}/nowhere",
        "DATABASE_CONNECT_TIMEOUT_SECONDS": "1",
        "SECRET_KEY": "x",
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "llmapp.asgi:application", "--port", str(port),
         "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(f"{url}/health", timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("the app did not start") from None
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/conversations", None),
        ("GET", "/api/v1/usage", None),
        ("POST", f"/api/v1/conversations/{SOME_ID}/messages", {"content": "hi"}),
        ("POST", f"/api/v1/conversations/{SOME_ID}/messages", {"content": "hi", "stream": True}),
        ("POST", f"/api/v1/conversations/{SOME_ID}/stop", None),
    ],
)
def test_database_down_is_a_quick_503(app_without_database, method, path, body):
    started = time.monotonic()
    response = httpx.request(
        method,
        app_without_database + path,
        json=body,
        headers={"Authorization": f"Bearer {WELL_FORMED_KEY}"},
        timeout=15,
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "database_unavailable"
    assert error["request_id"] == response.headers["X-Request-ID"]
    assert elapsed < 5
