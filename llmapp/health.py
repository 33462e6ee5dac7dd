"""Liveness and readiness. Readiness checks each backing service with a short timeout, so a
dead Redis turns into a 503 naming it within a second or so, never a hang."""

import time
import uuid

import redis
import structlog
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from kombu import Connection

log = structlog.get_logger(__name__)


def health(request):
    """Liveness: the process answers. No auth, no backing service touched."""
    return JsonResponse(
        {
            "status": "ok",
            "env": settings.APP_ENV,
            "timestamp": timezone.now().isoformat(),
            "requestId": request.request_id,
        }
    )


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_cache() -> None:
    key = f"health:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=5)
    if cache.get(key) != "1":
        raise RuntimeError("cache did not return what was written")
    cache.delete(key)


def _check_broker() -> None:
    url = settings.CELERY_BROKER_URL
    if settings.CELERY_TASK_ALWAYS_EAGER or url.startswith("memory://"):
        return
    if url.startswith(("redis://", "rediss://")):
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=settings.REDIS_CONNECT_TIMEOUT_SECONDS,
            socket_timeout=settings.REDIS_READ_TIMEOUT_SECONDS,
        )
        try:
            client.ping()
        finally:
            client.close()
        return
    with Connection(url, connect_timeout=1) as conn:
        conn.ensure_connection(max_retries=1, timeout=1)


CHECKS = {"database": _check_database, "cache": _check_cache, "broker": _check_broker}


def ready(request):
    """Readiness: database, cache and broker each answer; 503 naming what failed."""
    checks: dict[str, str] = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            check()
            checks[name] = "ok"
        except Exception as exc:  # any failure of a backing service means not ready
            checks[name] = "error"
            log.warning(
                "health.check_failed",
                check=name,
                error=type(exc).__name__,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )
    ok = all(v == "ok" for v in checks.values())
    body = {"status": "ok" if ok else "unavailable", "checks": checks}
    if not ok:
        body["failed"] = [name for name, value in checks.items() if value != "ok"]
    return JsonResponse(body, status=200 if ok else 503)
