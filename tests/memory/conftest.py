"""Fixtures of the memory tests: conversations with messages written straight through the ORM."""

import pytest

from conversations.models import Conversation, Message


def make_conversation(tenant, *, model: str = "", title: str = "memory test") -> Conversation:
    return Conversation.objects.create(
        organization=tenant.org, user=tenant.admin.user, title=title, model=model
    )


def add_messages(conversation: Conversation, contents: list[str], *, start: int | None = None):
    """Append messages alternating user/assistant (seq continues from ``last_seq``)."""
    first = (conversation.last_seq if start is None else start - 1) + 1
    rows = [
        Message(
            conversation=conversation,
            seq=first + i,
            role="user" if (first + i) % 2 == 1 else "assistant",
            content=content,
        )
        for i, content in enumerate(contents)
    ]
    Message.objects.bulk_create(rows)
    conversation.last_seq = first + len(contents) - 1
    Conversation.objects.filter(pk=conversation.pk).update(last_seq=conversation.last_seq)
    return rows


def filler(seq: int) -> str:
    return f"Message number {seq} talks about the weather and nothing else of note."


@pytest.fixture
def conversation(alice):
    return make_conversation(alice)
