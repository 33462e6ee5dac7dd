"""Helpers for the prompts tests: prompts with versions, messages that used them, a staff client."""

import itertools

import pytest
from django.apps import apps as django_apps
from django.contrib.auth import get_user_model

from conversations.models import Conversation, Message
from prompts import cache as prompt_cache
from prompts.models import Prompt
from prompts.seed import seed_default_prompt
from prompts.services import prompt_activate, prompt_create, prompt_version_create


def make_prompt(organization, name: str, contents: list[str], *, active: int | None = 1) -> Prompt:
    """A prompt with one version per text; version ``active`` (1-based) is made active."""
    prompt = prompt_create(organization=organization, name=name)
    for content in contents:
        prompt_version_create(prompt=prompt, content=content, note=f"v: {content[:20]}")
    if active:
        prompt_activate(prompt=prompt, version=active, reason="test setup")
    return prompt


_seq = itertools.count(1)


def make_conversation(tenant, *, prompt_name: str = "default-system-prompt") -> Conversation:
    return Conversation.objects.create(
        organization=tenant.org, user=tenant.member.user, prompt_name=prompt_name
    )


def add_assistant_message(conversation: Conversation, version, **fields) -> Message:
    """An assistant message that recorded ``version``, as the chat turn writes it."""
    seq = next(_seq)
    return Message.objects.create(
        conversation=conversation,
        seq=seq,
        role=Message.Role.ASSISTANT,
        content=fields.pop("content", "reply"),
        prompt_version=version,
        **fields,
    )


@pytest.fixture
def staff_client(client, db):
    user = get_user_model().objects.create_superuser("operator", "op@example.com", "pw-123456")
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture(autouse=True)
def _cache_breaker_reset():
    """A test that takes the cache down must not leave this process bypassing it."""
    prompt_cache.cache_reset_breaker()
    yield
    prompt_cache.cache_reset_breaker()


@pytest.fixture(autouse=True)
def _default_prompt_seeded(request):
    """Transactional tests flush the database, seeded rows included (and --reuse-db keeps it
    that way): put the global default prompt back, as migration 0002 made it."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    transactional = marker.kwargs.get("transaction") or (marker.args and marker.args[0])
    request.getfixturevalue("transactional_db" if transactional else "db")
    seed_default_prompt(django_apps)
