import json

import httpx
import pytest

API_VERSION = "2023-06-01"


@pytest.fixture
def fake(fake_anthropic_server):  # noqa: F811
    return fake_anthropic_server


@pytest.fixture
def api(fake):
    """A raw HTTP client for the fake, with a key and the version header."""
    headers = {"x-api-key": fake.api_key, "anthropic-version": API_VERSION}
    with httpx.Client(base_url=fake.url, headers=headers, timeout=10) as client:
        yield client


@pytest.fixture
def body():
    """A valid /v1/messages body; keyword arguments replace fields."""

    def make(text: str = "Hello there, how are you today?", **fields):
        data = {
            "model": "claude-sonnet-4-6",
            "max_tokens": 256,
            "messages": [{"role": "user", "content": text}],
        }
        data.update(fields)
        return data

    return make


def parse_sse(raw: str) -> list[tuple[str | None, dict]]:
    """(event line, parsed data) for each SSE event of a raw stream body."""
    events = []
    for chunk in raw.strip().split("\n\n"):
        name, data = None, None
        for line in chunk.splitlines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data = json.loads(line[len("data: ") :])
        events.append((name, data))
    return events


@pytest.fixture
def sse():
    return parse_sse
