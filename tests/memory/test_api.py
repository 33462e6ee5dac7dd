"""GET /api/v1/conversations/{id}/context and /summaries: what the next turn sends, scoped to
the caller's organisation; and the read-only Summary admin."""

import uuid

import pytest
from django.contrib.auth import get_user_model

from fake_anthropic.tokens import count_request
from memory.models import Summary
from prompts.models import Prompt, PromptVersion
from tests.memory.conftest import add_messages, filler, make_conversation

pytestmark = pytest.mark.django_db


@pytest.fixture
def long_conversation(alice):
    conversation = make_conversation(alice)
    add_messages(conversation, ["KEY=one\nhello"] + [filler(i) for i in range(2, 61)])
    summary = Summary.objects.create(
        conversation=conversation, start_seq=1, end_seq=40, content="KEY=one", model="m"
    )
    return conversation, summary


def test_context_shows_exactly_what_the_next_turn_sends(alice, long_conversation):
    conversation, summary = long_conversation
    prompt = Prompt.objects.create(organization=alice.org, name=conversation.prompt_name)
    version = PromptVersion.objects.create(
        prompt=prompt, version=3, content="You are Alice's bot.", is_active=True, max_tokens=700
    )
    response = alice.client().get(f"/api/v1/conversations/{conversation.pk}/context")
    assert response.status_code == 200
    body = response.json()
    assert body["prompt"] == {
        "name": conversation.prompt_name,
        "version": 3,
        "version_id": version.pk,
    }
    assert body["system"][0]["text"] == "You are Alice's bot."
    assert body["system"][1]["text"].startswith("[[conversation-summary]]")
    # The summary closes the cached prefix, as the llm layer sends it.
    assert body["system"][1]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in body["system"][0]
    assert body["summary"]["id"] == summary.pk
    assert (body["summary"]["start_seq"], body["summary"]["end_seq"]) == (1, 40)
    assert body["window_seqs"] == list(range(41, 61))
    assert [m["seqs"] for m in body["messages"]] == [[s] for s in range(41, 61)]
    assert body["messages"][-1]["content"] == filler(60)
    tokens = body["tokens"]
    assert tokens["total"] == tokens["system_prompt"] + tokens["summary"] + tokens["messages"]
    assert tokens["messages"] == sum(m["estimated_tokens"] for m in body["messages"])
    assert tokens["total"] <= body["budget"]["tokens"]
    assert body["budget"]["max_tokens"] == 700
    assert body["budget"]["limit"] == body["budget"]["context_window"] - 700
    sent = [{"role": m["role"], "content": m["content"]} for m in body["messages"]]
    assert count_request(body["system"], sent) <= tokens["total"]


def test_context_and_summaries_are_tenant_scoped(alice, bob, charlie, long_conversation):
    conversation, summary = long_conversation
    for path in ("context", "summaries"):
        url = f"/api/v1/conversations/{conversation.pk}/{path}"
        assert alice.client().get(url).status_code == 200
        for other in (bob, charlie):
            response = other.client().get(url)
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "not_found"
            assert "KEY=one" not in response.content.decode()
    # Bob's own conversation shows Bob's (empty) memory, never Alice's.
    bobs = make_conversation(bob)
    add_messages(bobs, ["hi bob"])
    body = bob.client().get(f"/api/v1/conversations/{bobs.pk}/context").json()
    assert body["summary"] is None
    assert body["window_seqs"] == [1]
    assert bob.client().get(f"/api/v1/conversations/{bobs.pk}/summaries").json()["results"] == []


def test_summaries_list(alice, long_conversation):
    conversation, summary = long_conversation
    body = alice.client().get(f"/api/v1/conversations/{conversation.pk}/summaries").json()
    assert body["count"] == 1
    assert body["results"][0]["id"] == summary.pk
    assert body["results"][0]["content"] == "KEY=one"


def test_unknown_or_anonymous_is_a_json_error(alice, anon_client):
    missing = alice.client().get(f"/api/v1/conversations/{uuid.uuid4()}/context")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert alice.client().get("/api/v1/conversations/not-a-uuid/context").status_code == 404
    conversation = make_conversation(alice)
    assert anon_client.get(f"/api/v1/conversations/{conversation.pk}/context").status_code == 401


def test_empty_conversation_context(alice):
    conversation = make_conversation(alice)
    body = alice.client().get(f"/api/v1/conversations/{conversation.pk}/context").json()
    assert body["messages"] == []
    assert body["tokens"]["messages"] == 0
    assert body["tokens"]["total"] == body["tokens"]["system_prompt"]


def test_admin_lists_a_conversations_summaries_read_only(client, alice, long_conversation):
    conversation, summary = long_conversation
    other = make_conversation(alice, title="other")
    Summary.objects.create(conversation=other, start_seq=1, end_seq=5, content="x", model="m")
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456")
    client.force_login(user)
    page = client.get(f"/admin/memory/summary/?conversation__id__exact={conversation.pk}")
    assert page.status_code == 200
    assert page.context["cl"].result_count == 1
    detail = client.get(f"/admin/memory/summary/{summary.pk}/change/")
    assert detail.status_code == 200
    assert "KEY=one" in detail.content.decode()
    assert client.get("/admin/memory/summary/add/").status_code == 403
    client.post(f"/admin/memory/summary/{summary.pk}/delete/", {"post": "yes"})
    assert Summary.objects.filter(pk=summary.pk).exists()
