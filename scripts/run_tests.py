"""Run the test suite on a real PostgreSQL and Redis.

Order of preference for each service: the URL in the environment (``DATABASE_URL``,
``REDIS_URL``), else the local default (127.0.0.1:5432 user postgres, 127.0.0.1:6379), when it
answers; else a throwaway server started from the machine's ``postgres``/``redis-server`` binaries
in a temporary folder (removed afterwards); else stop with a message naming what is missing.
Never SQLite, never a fake Redis. Arguments are passed to pytest. pytest's "no tests ran" (exit 5)
is a failure here.
"""

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/llmapp"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"


def say(message: str) -> None:
    print(f"[run_tests] {message}", flush=True)


def answers(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise SystemExit(f"[run_tests] the throwaway {what} did not start on port {port}")


def find_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def as_service_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: use the ``postgres`` account when we are root."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def start_postgres(stack: contextlib.ExitStack) -> str:
    initdb, postgres = find_binary("initdb"), find_binary("postgres")
    if not (initdb and postgres):
        raise SystemExit(
            "[run_tests] PostgreSQL does not answer at DATABASE_URL or 127.0.0.1:5432, and no "
            "postgres/initdb binaries were found. Install them (Debian: apt-get install "
            "postgresql) or set DATABASE_URL to a running server."
        )
    folder = Path(tempfile.mkdtemp(prefix="llmapp-pg-"))
    stack.callback(shutil.rmtree, folder, ignore_errors=True)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data = folder / "data"
    subprocess.run(
        as_service_user([initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync"]),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    port = free_port()
    cmd = [postgres, "-D", str(data), "-p", str(port), "-k", str(folder), "-h", "127.0.0.1"]
    cmd += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    cmd += ["-c", "max_connections=300"]
    proc = subprocess.Popen(
        as_service_user(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    stack.callback(proc.wait, 10)
    stack.callback(proc.terminate)
    wait_for(port, "PostgreSQL")
    time.sleep(0.5)
    say(f"started a throwaway PostgreSQL on port {port}")
    return f"postgres://postgres@127.0.0.1:{port}/llmapp"


def start_redis(stack: contextlib.ExitStack) -> str:
    binary = shutil.which("redis-server")
    if not binary:
        raise SystemExit(
            "[run_tests] Redis does not answer at REDIS_URL or 127.0.0.1:6379, and no "
            "redis-server binary was found. Install it (Debian: apt-get install redis-server) "
            "or set REDIS_URL to a running server."
        )
    folder = Path(tempfile.mkdtemp(prefix="llmapp-redis-"))
    stack.callback(shutil.rmtree, folder, ignore_errors=True)
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
    )
    stack.callback(proc.wait, 10)
    stack.callback(proc.terminate)
    wait_for(port, "Redis")
    say(f"started a throwaway Redis on port {port}")
    return f"redis://127.0.0.1:{port}/9"


def ensure_browser() -> None:
    """The chat page's browser test needs Debian's Chromium and chromedriver: install them when
    missing and we can (root with apt-get); otherwise that test fails saying what to install."""
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        say("chromium/chromedriver missing: apt-get install chromium chromium-driver")
        return
    say("installing chromium and chromium-driver for the browser test")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], env=env, check=False)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"], env=env, check=False
    )


def main(argv: list[str]) -> int:
    env = dict(os.environ)
    ensure_browser()
    with contextlib.ExitStack() as stack:
        database_url = env.get("DATABASE_URL") or DEFAULT_DATABASE_URL
        if not database_url.startswith(("postgres://", "postgresql://")):
            raise SystemExit("[run_tests] DATABASE_URL must point at PostgreSQL for the tests.")
        if not answers(database_url, 5432):
            database_url = start_postgres(stack)
        redis_url = env.get("REDIS_URL") or DEFAULT_REDIS_URL
        if not answers(redis_url, 6379):
            redis_url = start_redis(stack)
        env.update(
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            SECRET_KEY=env.get("SECRET_KEY") or "test-secret-key-not-for-production",
            DJANGO_DEBUG="0",
            LOG_FORMAT="json",
            ANTHROPIC_API_KEY="",
        )
        env.pop("CELERY_BROKER_URL", None)
        env.pop("ANTHROPIC_BASE_URL", None)
        say(f"PostgreSQL {urlparse(database_url).netloc}, Redis {urlparse(redis_url).netloc}")
        code = subprocess.call([sys.executable, "-m", "pytest", *argv], cwd=ROOT, env=env)
    if code == 5:
        say("pytest collected no tests: that is a failure")
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
