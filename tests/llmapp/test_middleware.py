"""Django's middleware under ASGI: hooks on the event loop, a thread only where I/O may happen.

Requests go through Django's async handler (``AsyncClient``), the stack ``asgi.py`` serves.
Both ways a middleware hook can take a thread are wrapped to record it: ``_in_thread`` here and
the ``sync_to_async`` of Django's ``MiddlewareMixin``.
"""

import re

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient
from django.utils import deprecation

from llmapp import middleware
from tenants.services import tenant_member_ensure

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct horse battery staple"


@pytest.fixture
def hops(monkeypatch) -> list[str]:
    taken: list[str] = []

    def recording(func, **kwargs):
        taken.append(func.__qualname__)
        return sync_to_async(func, **kwargs)

    monkeypatch.setattr(middleware, "_in_thread", recording)
    monkeypatch.setattr(deprecation, "sync_to_async", recording)
    return taken


@sync_to_async
def a_member_with_password():
    membership = tenant_member_ensure(org_slug="acme", username="erin", role="member")
    membership.user.set_password(PASSWORD)
    membership.user.save(update_fields=["password"])
    return membership


async def test_an_api_request_takes_no_thread_for_middleware(alice, hops):
    response = await AsyncClient().get(
        "/api/v1/me", headers={"Authorization": f"Bearer {alice.admin_key}"}
    )

    assert response.status_code == 200
    assert hops == []
    # Every adapted middleware still did its work.
    assert response["X-Frame-Options"] == "DENY"  # XFrameOptions
    assert response["X-Content-Type-Options"] == "nosniff"  # Security
    assert response["Content-Length"] == str(len(response.content))  # Common
    assert "X-Request-ID" in response


async def test_login_under_asgi_checks_csrf_and_saves_the_session_in_a_thread(hops):
    await a_member_with_password()
    client = AsyncClient(enforce_csrf_checks=True)
    page = await client.get("/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())[1]
    assert hops == []  # a page view with nothing to save

    refused = await client.post("/login/", {"username": "erin", "password": PASSWORD})
    assert refused.status_code == 403  # no token: CSRF still enforced

    hops.clear()
    response = await client.post(
        "/login/", {"username": "erin", "password": PASSWORD, "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    assert "CsrfViewMiddleware.process_view" in hops
    assert "SessionMiddleware.process_response" in hops  # the new session was saved

    chat = await client.get("/")
    assert chat.status_code == 200  # the saved session authenticates the next request


@sync_to_async
def an_organization_and_a_superuser():
    from django.contrib.auth import get_user_model

    from tenants.models import Organization

    organization = Organization.objects.create(slug="to-delete", name="To delete")
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456")
    return organization, user


async def test_an_admin_message_under_asgi_is_stored_and_shown(hops):
    """The admin adds a message after a delete: storing it may touch the session, so that hook
    takes a thread; the next page shows the message (it was stored and read back)."""
    organization, user = await an_organization_and_a_superuser()
    client = AsyncClient()
    await client.aforce_login(user)
    hops.clear()

    deleted = await client.post(
        f"/admin/tenants/organization/{organization.pk}/delete/", {"post": "yes"}
    )
    assert deleted.status_code == 302
    assert "MessageMiddleware.process_response" in hops

    listing = await client.get(deleted["Location"])
    assert listing.status_code == 200
    assert "was deleted successfully" in listing.content.decode()
