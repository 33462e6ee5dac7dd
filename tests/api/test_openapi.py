"""The OpenAPI schema is valid, documents every endpoint with its auth and error body, and a
bounded schemathesis run against the live app finds no 500 and no response breaking it."""

import os
import shutil
import subprocess
import sys

import httpx
import pytest
from drf_spectacular.validation import validate_schema

EXPECTED_PATHS = {
    "/api/v1/me",
    "/api/v1/conversations",
    "/api/v1/conversations/{id}",
    "/api/v1/conversations/{id}/messages",
    "/api/v1/conversations/{id}/stop",
    "/api/v1/conversations/{id}/context",
    "/api/v1/usage",
    "/api/v1/prompts",
    "/api/v1/prompts/{name}",
    "/api/v1/prompts/{name}/versions",
    "/api/v1/prompts/{name}/activate/{version}",
    "/api/v1/prompts/{name}/rollback",
    "/api/v1/prompts/{name}/stats",
    "/api/v1/prompts/{name}/compare",
}


@pytest.fixture
def schema(client) -> dict:
    response = client.get("/api/schema", {"format": "json"})
    assert response.status_code == 200
    return response.json()


@pytest.mark.django_db
def test_the_schema_is_valid_openapi_with_every_endpoint(schema):
    validate_schema(schema)  # raises on an invalid document
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) >= EXPECTED_PATHS
    assert schema["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            assert {"ApiKey": []} in operation["security"], (method, path)
            error = operation["responses"]["401"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/ErrorBody"}, (method, path)
    send = schema["paths"]["/api/v1/conversations/{id}/messages"]["post"]
    assert "text/event-stream" in send["responses"]["200"]["content"]


@pytest.mark.django_db
def test_the_docs_page_serves_its_assets_locally(client):
    page = client.get("/api/docs").content.decode()
    assert "swagger-ui" in page
    assert "cdn" not in page.lower()
    assert "/static/drf_spectacular_sidecar/" in page


@pytest.mark.django_db(transaction=True)
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    alice, live_asgi_url, settings, tmp_path
):
    # Enough headroom that the run exercises the endpoints rather than the rate limiter.
    settings.RATE_LIMIT_USER_REQUESTS_PER_MINUTE = 100_000
    settings.RATE_LIMIT_REQUESTS_PER_MINUTE = 100_000
    st = shutil.which("st", path=os.path.dirname(sys.executable))
    assert st, "schemathesis is part of requirements-dev.txt"
    # a conversation and a prompt, so the generated requests also meet real objects
    headers = {"Authorization": f"Bearer {alice.admin_key}"}
    httpx.post(f"{live_asgi_url}/api/v1/conversations", json={"title": "x"}, headers=headers)
    run = subprocess.run(
        [
            st,
            "run",
            f"{live_asgi_url}/api/schema?format=json",
            "--url",
            live_asgi_url,
            "--header",
            f"Authorization: Bearer {alice.admin_key}",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "12",
            "--max-time",
            "40",
            "--workers",
            "1",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    report = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
