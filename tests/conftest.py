"""Shared fixtures: three tenants (alice, bob, charlie), API clients, the fake model server and
an in-process ASGI server for tests that need a real socket (SSE, WebSocket).

The tenants are built per test (a handful of inserts) rather than once per session: tests that
commit for real (live server, Celery worker, concurrency) flush the database after themselves,
which would delete session-wide rows under the feet of the tests that follow.
"""

import socket
import threading
import time
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIClient

from fake_anthropic.testing import fake_anthropic_server  # noqa: F401  (session fixture)
from tenants.models import Membership, Organization
from tenants.services import api_key_create, tenant_member_ensure


@dataclass
class Tenant:
    org: Organization
    admin: Membership
    admin_key: str
    member: Membership
    member_key: str

    def client(self, *, admin: bool = True) -> APIClient:
        client = APIClient()
        client.credentials(
            HTTP_AUTHORIZATION=f"Bearer {self.admin_key if admin else self.member_key}"
        )
        return client


def build_tenant(slug: str) -> Tenant:
    admin = tenant_member_ensure(org_slug=slug, username=f"{slug}-admin", role="admin")
    member = tenant_member_ensure(org_slug=slug, username=f"{slug}-member", role="member")
    return Tenant(
        org=admin.organization,
        admin=admin,
        admin_key=api_key_create(organization=admin.organization, user=admin.user).raw_key,
        member=member,
        member_key=api_key_create(organization=member.organization, user=member.user).raw_key,
    )


@pytest.fixture(scope="session", autouse=True)
def _model_is_fake_anthropic(fake_anthropic_server):
    """Every test's model is the session's fake_anthropic, reached by the real SDK over a socket."""
    settings.ANTHROPIC_BASE_URL = fake_anthropic_server.url
    settings.ANTHROPIC_API_KEY = ""
    return fake_anthropic_server


@pytest.fixture
def alice(db) -> Tenant:
    return build_tenant("alice")


@pytest.fixture
def bob(db) -> Tenant:
    return build_tenant("bob")


@pytest.fixture
def charlie(db) -> Tenant:
    return build_tenant("charlie")


@pytest.fixture
def tenants(alice, bob, charlie) -> dict[str, Tenant]:
    return {"alice": alice, "bob": bob, "charlie": charlie}


@pytest.fixture(autouse=True)
def _default_prompt_seeded(request):
    """The data migration's global default prompt, again: transactional tests flush every
    table after themselves (and --reuse-db keeps the flushed database for the next run)."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    request.getfixturevalue("transactional_db" if marker.kwargs.get("transaction") else "db")
    from django.apps import apps

    from prompts.seed import seed_default_prompt

    seed_default_prompt(apps)


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture(autouse=True)
def _clean_cache():
    """Each test starts with an empty cache (and so empty rate-limit and prompt-cache state)."""
    cache.clear()
    return


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_asgi_url(django_db_setup, django_db_blocker) -> str:
    """``llmapp.asgi:application`` served by uvicorn in a thread of this process, on a real
    socket and on the test database. Tests using it must commit their data
    (``@pytest.mark.django_db(transaction=True)``)."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(
        "llmapp.asgi:application", host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    with django_db_blocker.unblock():
        thread = threading.Thread(target=server.run, daemon=True, name="live-asgi")
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the live ASGI server did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
        server.should_exit = True
        thread.join(timeout=10)
