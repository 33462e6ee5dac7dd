"""Fixtures of the chat tests: conversations, the fake model's counters, and a small SSE client
for the live ASGI server. (tests/conftest.py points the SDK at the session's fake_anthropic.)"""

import json
import time
from dataclasses import dataclass, field

import httpx
import pytest

from conversations.models import Conversation
from conversations.services import conversation_create
from tenants.selectors import TenantContext


@pytest.fixture
def fake(fake_anthropic_server):
    return fake_anthropic_server


@pytest.fixture
def fast_failures(settings):
    """No SDK retries, so injected upstream errors answer at once."""
    settings.LLM_MAX_RETRIES = 0


def tenant_context(tenant, *, admin: bool = True) -> TenantContext:
    membership = tenant.admin if admin else tenant.member
    return TenantContext(organization=tenant.org, user=membership.user, membership=membership)


def new_conversation(tenant, *, admin: bool = True, **kwargs) -> Conversation:
    return conversation_create(tenant=tenant_context(tenant, admin=admin), **kwargs)


def auth(tenant, *, admin: bool = True) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant.admin_key if admin else tenant.member_key}"}


@dataclass
class SSEEvent:
    id: int | None
    event: str
    data: dict
    received_at: float


@dataclass
class SSEStream:
    status: int
    headers: httpx.Headers
    events: list[SSEEvent] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    body: dict | None = None  # the JSON body when the answer was not a stream

    def named(self, name: str) -> list[SSEEvent]:
        return [e for e in self.events if e.event == name]

    @property
    def text(self) -> str:
        return "".join(e.data["text"] for e in self.named("delta"))


async def sse_read(lines, stream: SSEStream, until=None):
    """Parse SSE ``lines`` (``response.aiter_lines()``) as they arrive into ``stream``;
    ``until(event)`` returning True stops reading (call again with the same ``lines`` to go on)."""
    current: dict = {}
    async for line in lines:
        if line.startswith(":"):
            stream.comments.append(line)
        elif line == "":
            if current:
                event = SSEEvent(
                    id=int(current["id"]) if "id" in current else None,
                    event=current.get("event", "message"),
                    data=json.loads(current.get("data", "null")),
                    received_at=time.monotonic(),
                )
                stream.events.append(event)
                current = {}
                if until is not None and until(event):
                    return
        else:
            name, _, value = line.partition(":")
            current[name] = value[1:] if value.startswith(" ") else value


async def sse_post(base_url: str, path: str, body: dict, headers: dict, until=None) -> SSEStream:
    """POST and read the SSE answer (or the JSON error) with a real HTTP client."""
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=30) as client,
        client.stream("POST", path, json=body, headers=headers) as response,
    ):
        stream = SSEStream(status=response.status_code, headers=response.headers)
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            await sse_read(response.aiter_lines(), stream, until)
        else:
            stream.body = json.loads(await response.aread())
        return stream


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    """Poll ``predicate`` until it returns something truthy (then return it) or time out."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)
