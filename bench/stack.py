"""Start everything a benchmark needs on loopback, and stop it again.

``Stack`` owns fake_anthropic, a fresh PostgreSQL database, a flushed Redis database, an API key,
a Celery worker and the server under test. The server is started through ``deploy/web.sh`` (the
production command) with ``WEB_SERVER`` / ``WEB_WORKERS`` chosen per configuration, so what is
measured is what is deployed. Every child runs in its own process group so that stopping it also
stops what it spawned (uvicorn's worker processes, Celery's threads) and nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis
from psycopg import sql

from fake_anthropic.testing import FakeAnthropic, start_fake_anthropic

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / "var" / "bench"

# Limits far above what any scenario reaches: the limiter still runs its Redis Lua path for every
# request and turn (its cost is part of the measured path), it just never refuses.
HIGH_LIMITS = {
    "RATE_LIMIT_REQUESTS_PER_MINUTE": "100000000",
    "RATE_LIMIT_USER_REQUESTS_PER_MINUTE": "100000000",
    "RATE_LIMIT_TOKENS_PER_MINUTE": "1000000000000",
    "RATE_LIMIT_MAX_CONCURRENT_STREAMS": "100000",
    "RATE_LIMIT_MONTHLY_TOKEN_BUDGET": "0",
}


@dataclass(frozen=True)
class ServerConfig:
    """One way of serving ``llmapp.asgi:application`` (an environment for deploy/web.sh)."""

    name: str
    server: str  # WEB_SERVER: uvicorn | daphne
    workers: int = 1
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if self.server == "daphne":
            return "daphne"
        return f"uvicorn x{self.workers}" if self.workers > 1 else "uvicorn"


SERVERS: dict[str, ServerConfig] = {
    "daphne": ServerConfig("daphne", "daphne"),
    "uvicorn": ServerConfig("uvicorn", "uvicorn", workers=1),
    "uvicorn-2": ServerConfig("uvicorn-2", "uvicorn", workers=2),
}


@dataclass
class StackOptions:
    db_name: str = "llmapp_bench"
    admin_dsn: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    redis_url: str = "redis://127.0.0.1:6379/7"
    ttft_ms: int = 20
    itl_ms: int = 2
    tokens: int = 12
    celery_worker: bool = True
    log_dir: Path = LOG_DIR


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop_group(process: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM the process group we created for ``process``, then SIGKILL what is left."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


class Stack:
    """fake_anthropic + PostgreSQL + Redis + Celery worker + one server at a time."""

    def __init__(self, options: StackOptions | None = None, *, log=None) -> None:
        self.options = options or StackOptions()
        self.log = log or (lambda message: print(f"[bench] {message}", file=sys.stderr, flush=True))
        self.fake: FakeAnthropic | None = None
        self.worker: subprocess.Popen | None = None
        self.server: subprocess.Popen | None = None
        self.server_config: ServerConfig | None = None
        self.base_url = ""
        self.api_key = ""
        self._tmp = tempfile.TemporaryDirectory(prefix="llmapp-bench-")
        self._log_files: list = []
        self._worker_ready = False

    # --- environment ---------------------------------------------------------------------------
    @property
    def database_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:5432/{self.options.db_name}"

    def env(self, **extra: str) -> dict[str, str]:
        """The app's environment: production settings pointed at the bench services."""
        env = dict(os.environ)
        for name in ("DJANGO_SETTINGS_MODULE", "PROMETHEUS_MULTIPROC_DIR", "WEB_CONCURRENCY"):
            env.pop(name, None)
        env.update(
            DJANGO_DEBUG="0",
            SECRET_KEY="bench-secret-key-not-for-production",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            DATABASE_URL=self.database_url,
            REDIS_URL=self.options.redis_url,
            ANTHROPIC_API_KEY="",
            ANTHROPIC_BASE_URL=self.fake.url if self.fake else "",
            LOG_FORMAT="json",
            LOG_LEVEL="INFO",
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
            # deploy/web.sh calls uvicorn/daphne by name: this interpreter's scripts come first
            # (make runs .venv/bin/python without activating the venv).
            PATH=os.pathsep.join(filter(None, [os.path.dirname(sys.executable), env.get("PATH")])),
            **HIGH_LIMITS,
        )
        env.update(extra)
        return env

    def _logfile(self, name: str):
        self.options.log_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.options.log_dir / f"{name}.log", "w")  # noqa: SIM115 - closed in stop()
        self._log_files.append(handle)
        return handle

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = self._logfile(name)
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopped as a whole, and only it
        )

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> Stack:
        o = self.options
        started = time.monotonic()
        self.fake = start_fake_anthropic(ttft_ms=o.ttft_ms, itl_ms=o.itl_ms, tokens=o.tokens)
        self.log(f"fake_anthropic at {self.fake.url} (ttft {o.ttft_ms} ms, itl {o.itl_ms} ms)")
        redis.Redis.from_url(o.redis_url).flushdb()
        from_template = self._fresh_database()
        args = [] if from_template else ["--migrate"]
        self.api_key = self._python("bench.appsetup", *args).strip().splitlines()[-1].strip()
        if not from_template:
            self._save_template()
        if o.celery_worker:
            self.worker = self._spawn("celery", self._worker_command(), self.env())
        self.log(f"stack ready in {time.monotonic() - started:.1f} s")
        return self

    def _python(self, module: str, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{module} {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    # A migrated, empty database is kept as a template named after the migrations it holds:
    # cloning it takes a fraction of a second, migrating from scratch takes many.
    @property
    def _template(self) -> str:
        return f"{self.options.db_name}_template"

    def _fresh_database(self) -> bool:
        """Drop and recreate the bench database; True when it was cloned from the template."""
        name, template = sql.Identifier(self.options.db_name), sql.Identifier(self._template)
        with psycopg.connect(self.options.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
            row = conn.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                [self._template],
            ).fetchone()
            if row and row[0] == migrations_fingerprint():
                conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(name, template))
                return True
            conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
            return False

    def _save_template(self) -> None:
        """Keep the just-migrated database as the template (before anything else connects)."""
        name, template = sql.Identifier(self.options.db_name), sql.Identifier(self._template)
        with psycopg.connect(self.options.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(template))
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(template, name))
            conn.execute(
                sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                    template, sql.Literal(migrations_fingerprint())
                )
            )
        # The template holds the API key just created: harmless (the bench database is always
        # re-cloned and gets a new key), and its organisation is the same "bench".

    @staticmethod
    def _worker_command() -> list[str]:
        return [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "llmapp",
            "worker",
            "-Q",
            "default,memory",
            "-P",
            "threads",
            "--concurrency",
            "4",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]

    def wait_worker(self, timeout: float = 60.0) -> None:
        """Block until the Celery worker logs that it is ready."""
        if self.worker is None or self._worker_ready:
            return
        log_path = self.options.log_dir / "celery.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.worker.poll() is not None:
                raise RuntimeError(f"the Celery worker exited; see {log_path}")
            if " ready." in log_path.read_text(errors="replace"):
                self._worker_ready = True
                return
            time.sleep(0.2)
        raise RuntimeError(f"the Celery worker did not get ready; see {log_path}")

    def start_server(self, config: ServerConfig, *, timeout: float = 60.0) -> str:
        """Serve the app with ``config`` through deploy/web.sh; returns its base URL."""
        self.stop_server()
        port = free_port()
        extra = {
            "WEB_SERVER": config.server,
            "WEB_WORKERS": str(config.workers),
            "WEB_HOST": "127.0.0.1",
            "PORT": str(port),
            "MIGRATE_ON_START": "0",  # migrated a moment ago (start()); saves a Django start-up
            **config.extra_env,
        }
        if config.workers > 1:
            extra["PROMETHEUS_MULTIPROC_DIR"] = str(Path(self._tmp.name) / f"prom-{config.name}")
        self.server = self._spawn(
            f"server-{config.name}", ["sh", "deploy/web.sh"], self.env(**extra)
        )
        self.server_config = config
        self.base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError(
                    f"{config.name} exited with {self.server.returncode}; "
                    f"see {self.options.log_dir}/server-{config.name}.log"
                )
            try:
                with urllib.request.urlopen(self.base_url + "/health/ready", timeout=2) as r:
                    if r.status == 200 and self._all_workers_up(config):
                        self.wait_worker()
                        self.log(f"{config.label} serving at {self.base_url}")
                        return self.base_url
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{config.name} did not get ready in {timeout:.0f} s")

    def _all_workers_up(self, config: ServerConfig) -> bool:
        return len(self.server_pids()) >= (config.workers if config.workers > 1 else 1)

    def server_pids(self) -> list[int]:
        """The processes that serve requests: the server itself, or its worker processes."""
        if self.server is None or self.server.poll() is not None:
            return []
        children = _children(self.server.pid)
        # uvicorn --workers N: a supervisor whose children are the workers (and nothing else
        # that serves); a single process serves itself.
        workers = [pid for pid in children if _is_python(pid)]
        return workers or [self.server.pid]

    def stop_server(self) -> None:
        if self.server is not None:
            _stop_group(self.server)
            self.server = None
            self.server_config = None

    def stop(self) -> None:
        self.stop_server()
        if self.worker is not None:
            _stop_group(self.worker)
            self.worker = None
        if self.fake is not None:
            self.fake.stop()
            self.fake = None
        for handle in self._log_files:
            handle.close()
        self._log_files.clear()
        self._tmp.cleanup()

    def __enter__(self) -> Stack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


def migrations_fingerprint() -> str:
    """A hash of every migration file of the project's apps."""
    digest = hashlib.sha256()
    for path in sorted(ROOT.glob("*/migrations/*.py")):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


# --- /proc helpers: peak resident memory of the server processes --------------------------------
def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _is_python(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return False
    # multiprocessing's resource tracker is a python child too, but serves nothing.
    return b"python" in cmdline.split(b"\0", 1)[0] and b"resource_tracker" not in cmdline


def _status_kb(pid: int, field_name: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time consumed so far by ``pids`` (all their threads), in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / ticks


def reset_peak_rss(pids: list[int]) -> None:
    """Restart the kernel's high-water mark (VmHWM) at the current RSS (``clear_refs`` 5)."""
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")


def peak_rss_mb(pids: list[int]) -> dict[str, float | None]:
    """VmHWM of each process: the largest one (one app process) and the sum, in MiB."""
    values = [v for v in (_status_kb(pid, "VmHWM") for pid in pids) if v is not None]
    if not values:
        return {"max": None, "total": None}
    return {"max": round(max(values) / 1024, 1), "total": round(sum(values) / 1024, 1)}
