import json
import logging
import time
import uuid

import pytest
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.django_db


def test_request_id_is_echoed_when_valid(client):
    response = client.get("/health", HTTP_X_REQUEST_ID="abc-123_X.y")
    assert response["X-Request-ID"] == "abc-123_X.y"
    assert response.json()["requestId"] == "abc-123_X.y"


@pytest.mark.parametrize("bad", ["", "has space", "x" * 129, "semi;colon", "ünïcode"])
def test_invalid_request_ids_are_replaced_with_a_uuid4(client, bad):
    response = client.get("/health", HTTP_X_REQUEST_ID=bad)
    generated = response["X-Request-ID"]
    assert generated != bad
    assert uuid.UUID(generated).version == 4


def test_request_id_is_generated_and_in_error_bodies(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert uuid.UUID(response["X-Request-ID"]).version == 4
    assert response.json()["error"] == {
        "code": "not_found",
        "message": "Not found.",
        "request_id": response["X-Request-ID"],
    }


def test_health_is_public(client):
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["env"]
    assert body["timestamp"]


def test_ready_checks_every_service(client):
    response = client.get("/health/ready")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok", "broker": "ok"},
    }


def closed_port_url() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def test_ready_names_redis_when_it_is_down_within_two_seconds(client, settings):
    dead = closed_port_url()
    caches = {
        "default": {
            **settings.CACHES["default"],
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": dead,
        }
    }
    with override_settings(CACHES=caches, CELERY_BROKER_URL=dead, CELERY_TASK_ALWAYS_EAGER=False):
        # override_settings(CACHES=...) makes Django rebuild its cache handlers.
        started = time.monotonic()
        response = client.get("/health/ready")
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    body = response.json()
    assert body["checks"] == {"database": "ok", "cache": "error", "broker": "error"}
    assert body["failed"] == ["cache", "broker"]
    assert elapsed < 2.0


def test_metrics_parse_and_count_requests(client):
    client.get("/health")
    text = client.get("/metrics").content.decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    requests = families["django_http_requests_total_by_view_transport_method"]
    health = [
        s
        for s in requests.samples
        if s.labels.get("view") == "health" and s.name.endswith("_total")
    ]
    assert health
    assert health[0].value >= 1
    assert "django_http_requests_latency_seconds_by_view_method" in families
    assert "django_http_responses_total_by_status_view_method" in families
    assert any(name.startswith("django_http_requests_before_middlewares") for name in families)


def test_access_log_line_has_the_request_fields(alice, caplog):
    caplog.set_level(logging.INFO, logger="llmapp.access")
    alice.client().get("/api/v1/me", HTTP_X_REQUEST_ID="trace-me", HTTP_USER_AGENT="pytest-ua")
    records = [r for r in caplog.records if r.name == "llmapp.access"]
    assert records
    event = records[-1].msg
    assert isinstance(event, dict)
    assert event["event"] == "http.request"
    assert event["method"] == "GET"
    assert event["path"] == "/api/v1/me"
    assert event["route"] == "api/v1/me"
    assert event["status"] == 200
    assert event["userAgent"] == "pytest-ua"
    assert event["org"] == "alice"
    assert event["user"] == "alice-admin"
    assert event["duration_ms"] >= 0


def test_log_lines_are_json_with_the_request_id(caplog):
    import structlog

    caplog.set_level(logging.INFO, logger="probe")
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id="rid-42")
    structlog.get_logger("probe").info("probe.event", n=1)
    structlog.contextvars.clear_contextvars()
    record = next(r for r in caplog.records if r.name == "probe")
    # format it with the formatter the app installed on the root handler
    formatter = logging.getLogger().handlers[0].formatter
    line = json.loads(formatter.format(record))
    assert line["event"] == "probe.event"
    assert line["request_id"] == "rid-42"
    assert line["n"] == 1
    assert line["level"] == "info"
