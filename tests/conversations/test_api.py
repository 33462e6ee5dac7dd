"""REST API of conversations without the model: CRUD, validation, archive/delete rules, messages
listing, tenant isolation on every endpoint, usage sums, automatic titles."""

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.utils import timezone

from conversations.models import Conversation, Message
from conversations.turn import title_from, turn_claim
from llmapp.errors import Conflict
from prompts.models import Prompt, PromptVersion
from tests.conversations.conftest import new_conversation, tenant_context

pytestmark = pytest.mark.django_db


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["request_id"] == response["X-Request-ID"]
    return body["error"]


def test_create_list_retrieve_update(alice):
    client = alice.client()
    created = client.post(
        "/api/v1/conversations", {"title": " Trip ", "model": "claude-haiku-4-5"}, format="json"
    )
    assert created.status_code == 201
    body = created.json()
    assert body["title"] == "Trip"
    assert body["model"] == "claude-haiku-4-5"
    assert body["prompt"] == "default-system-prompt"
    assert body["archived"] is False
    assert body["user"] == "alice-admin"

    listed = client.get("/api/v1/conversations").json()
    assert listed["count"] == 1
    assert listed["results"][0]["id"] == body["id"]

    one = client.get(f"/api/v1/conversations/{body['id']}").json()
    assert one == listed["results"][0]

    patched = client.patch(
        f"/api/v1/conversations/{body['id']}",
        {"title": "Holiday", "prompt": "tutor"},
        format="json",
    )
    assert patched.status_code == 200
    assert patched.json()["title"] == "Holiday"
    assert Conversation.objects.get(pk=body["id"]).prompt_name == "tutor"


def test_the_list_shows_the_callers_own_and_admins_may_ask_for_everyone(alice, bob):
    new_conversation(alice, title="from admin")
    new_conversation(alice, title="from member", admin=False)
    new_conversation(bob, title="bob's")

    def titles(client, query=""):
        return [c["title"] for c in client.get(f"/api/v1/conversations{query}").json()["results"]]

    assert titles(alice.client(admin=False)) == ["from member"]
    assert titles(alice.client()) == ["from admin"]
    assert sorted(titles(alice.client(), "?all=true")) == ["from admin", "from member"]
    # a member asking for everyone still gets only their own
    assert titles(alice.client(admin=False), "?all=true") == ["from member"]


@pytest.mark.django_db(transaction=True)  # POST .../messages runs in another thread: commit
def test_a_member_cannot_see_or_use_a_colleagues_conversation(alice):
    theirs = new_conversation(alice, title="admin's own")
    member = alice.client(admin=False)
    for method, path in [
        ("get", ""),
        ("patch", ""),
        ("delete", ""),
        ("get", "/messages"),
        ("post", "/messages"),
        ("post", "/stop"),
        ("get", "/context"),
    ]:
        response = getattr(member, method)(
            f"/api/v1/conversations/{theirs.pk}{path}", {"content": "hi"}, format="json"
        )
        assert response.status_code == 404, (method, path, response.content)
        assert response.json()["error"]["code"] == "not_found"
    theirs.refresh_from_db()
    assert theirs.title == "admin's own"
    assert theirs.last_seq == 0
    # the organisation's admin may read a member's conversation
    mine = new_conversation(alice, title="member's", admin=False)
    assert alice.client().get(f"/api/v1/conversations/{mine.pk}").status_code == 200


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"title": "x", "colour": "red"}, "invalid_request", "colour"),
        ({"prompt": "not a slug!"}, "invalid_request", "prompt"),
        ({"title": "x" * 201}, "invalid_request", "title"),
    ],
)
def test_create_refuses_bad_input(alice, body, code, field):
    response = alice.client().post("/api/v1/conversations", body, format="json")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == code
    assert field in error["details"]
    assert Conversation.objects.count() == 0


def test_malformed_json_is_400(alice):
    response = alice.client().post(
        "/api/v1/conversations", data="{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "malformed_json"


def test_patch_refuses_unknown_fields(alice):
    conversation = new_conversation(alice)
    response = alice.client().patch(
        f"/api/v1/conversations/{conversation.pk}", {"last_seq": 99}, format="json"
    )
    assert response.status_code == 400
    assert "last_seq" in error_of(response)["details"]
    conversation.refresh_from_db()
    assert conversation.last_seq == 0


def test_archive_then_sending_is_409(alice):
    conversation = new_conversation(alice)
    response = alice.client().patch(
        f"/api/v1/conversations/{conversation.pk}", {"archived": True}, format="json"
    )
    assert response.json()["archived"] is True
    # Refused by the claim, before anything is stored or the model is involved.
    with pytest.raises(Conflict) as caught:
        turn_claim(
            tenant=tenant_context(alice),
            conversation_id=conversation.pk,
            content="hi",
            turn_id=uuid.uuid4(),
        )
    assert caught.value.code == "conversation_archived"
    assert not Message.objects.exists()
    unarchived = alice.client().patch(
        f"/api/v1/conversations/{conversation.pk}", {"archived": False}, format="json"
    )
    assert unarchived.json()["archived"] is False


def test_delete_really_deletes_with_messages(alice):
    conversation = new_conversation(alice)
    Message.objects.create(conversation=conversation, seq=1, role="user", content="hi")
    response = alice.client().delete(f"/api/v1/conversations/{conversation.pk}")
    assert response.status_code == 204
    assert not Conversation.objects.exists()
    assert not Message.objects.exists()


def test_delete_during_a_turn_is_409(alice):
    conversation = new_conversation(alice)
    Conversation.objects.filter(pk=conversation.pk).update(
        active_turn_id=uuid.uuid4(), turn_started_at=timezone.now()
    )
    response = alice.client().delete(f"/api/v1/conversations/{conversation.pk}")
    assert response.status_code == 409
    assert error_of(response)["code"] == "turn_in_progress"
    assert Conversation.objects.filter(pk=conversation.pk).exists()


def test_messages_are_listed_oldest_first_and_paginated(alice):
    conversation = new_conversation(alice)
    for seq in (3, 1, 2):
        Message.objects.create(conversation=conversation, seq=seq, role="user", content=f"m{seq}")
    first = (
        alice.client().get(f"/api/v1/conversations/{conversation.pk}/messages?page_size=2").json()
    )
    assert first["count"] == 3
    assert [m["content"] for m in first["results"]] == ["m1", "m2"]
    second = alice.client().get(first["next"]).json()
    assert [m["seq"] for m in second["results"]] == [3]


def test_unknown_or_malformed_ids_are_json_404(alice):
    client = alice.client()
    for path in (
        f"/api/v1/conversations/{uuid.uuid4()}",
        "/api/v1/conversations/not-a-uuid",
        f"/api/v1/conversations/{uuid.uuid4()}/messages",
        "/api/v1/conversations/12/messages",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert error_of(response)["code"] == "not_found"


def test_unauthenticated_is_401_everywhere(anon_client, alice):
    conversation = new_conversation(alice)
    for method, path in [
        ("get", "/api/v1/conversations"),
        ("post", "/api/v1/conversations"),
        ("get", f"/api/v1/conversations/{conversation.pk}"),
        ("get", f"/api/v1/conversations/{conversation.pk}/messages"),
        ("post", f"/api/v1/conversations/{conversation.pk}/messages"),
        ("post", f"/api/v1/conversations/{conversation.pk}/stop"),
        ("get", "/api/v1/usage"),
    ]:
        response = getattr(anon_client, method)(path, {"content": "x"}, format="json")
        assert response.status_code == 401, (method, path)
        assert error_of(response)["code"] == "unauthenticated"


def test_bob_cannot_read_change_send_to_or_stop_alices_conversation(alice, bob, charlie):
    conversation = new_conversation(alice, title="secret")
    Message.objects.create(conversation=conversation, seq=1, role="user", content="private")
    base = f"/api/v1/conversations/{conversation.pk}"
    for tenant in (bob, charlie):
        for admin in (True, False):
            client = tenant.client(admin=admin)
            assert client.get("/api/v1/conversations").json()["count"] == 0
            for method, path, body in [
                ("get", base, None),
                ("patch", base, {"title": "mine"}),
                ("delete", base, None),
                ("get", f"{base}/messages", None),
            ]:
                response = getattr(client, method)(path, body, format="json")
                assert response.status_code == 404, (method, path)
                assert error_of(response)["code"] == "not_found"
    conversation.refresh_from_db()
    assert conversation.title == "secret"
    assert list(conversation.messages.values_list("content", flat=True)) == ["private"]


@pytest.mark.django_db(transaction=True)
def test_bob_cannot_send_to_or_stop_alices_conversation(alice, bob, charlie):
    # Transactional: sending and stopping are async paths whose queries run in worker threads.
    conversation = new_conversation(alice)
    base = f"/api/v1/conversations/{conversation.pk}"
    for tenant in (bob, charlie):
        client = tenant.client(admin=False)
        for path, body in [(f"{base}/messages", {"content": "hi"}), (f"{base}/stop", None)]:
            response = client.post(path, body, format="json")
            assert response.status_code == 404, path
            assert error_of(response)["code"] == "not_found"
    assert not Message.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_stop_without_a_turn_is_409(alice):
    conversation = new_conversation(alice)
    response = alice.client().post(f"/api/v1/conversations/{conversation.pk}/stop")
    assert response.status_code == 409
    assert error_of(response)["code"] == "no_turn_in_progress"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("Plan a trip to Lisbon", "Plan a trip to Lisbon"),
        ("  many   spaces\n\nand lines  ", "many spaces and lines"),
        (
            "Could you please explain how the sliding window of the memory works in detail?",
            "Could you please explain how the sliding window of the…",
        ),
        ("x" * 100, "x" * 60 + "…"),
    ],
)
def test_title_from_first_message(content, expected, settings):
    settings.CHAT_TITLE_MAX_CHARS = 60
    title = title_from(content)
    assert title == expected
    assert len(title) <= 61


def _assistant(conversation, seq, *, model, day, tokens, cost, prompt_version=None):
    message = Message.objects.create(
        conversation=conversation,
        seq=seq,
        role="assistant",
        content="r",
        model=model,
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        cache_read_input_tokens=tokens[2],
        cache_creation_input_tokens=tokens[3],
        cost_usd=Decimal(cost),
        prompt_version=prompt_version,
    )
    Message.objects.filter(pk=message.pk).update(
        created_at=dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)
    )
    return message


def test_usage_sums_equal_the_sum_over_messages(alice, bob):
    day1, day2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
    admin_conv = new_conversation(alice)
    member_conv = new_conversation(alice)
    member_conv.user = alice.member.user
    member_conv.save()
    _assistant(
        admin_conv, 2, model="claude-sonnet-4-6", day=day1, tokens=(10, 20, 3, 4), cost="0.001"
    )
    _assistant(
        admin_conv, 4, model="claude-haiku-4-5", day=day2, tokens=(5, 6, 0, 1), cost="0.0002"
    )
    prompt = Prompt.objects.create(organization=alice.org, name="tutor")
    version = PromptVersion.objects.create(prompt=prompt, version=3, content="Teach.")
    _assistant(
        member_conv,
        2,
        model="claude-sonnet-4-6",
        day=day2,
        tokens=(7, 8, 9, 0),
        cost="0.003",
        prompt_version=version,
    )
    Message.objects.create(
        conversation=admin_conv, seq=1, role="user", content="q", input_tokens=999
    )
    _assistant(
        new_conversation(bob),
        2,
        model="claude-sonnet-4-6",
        day=day1,
        tokens=(1000, 1, 1, 1),
        cost="9",
    )

    client = alice.client(admin=False)
    by_day = client.get("/api/v1/usage?group_by=day").json()
    assert [(r["key"], r["input_tokens"], r["output_tokens"]) for r in by_day["results"]] == [
        ("2026-11-01", 10, 20),
        ("2026-11-02", 12, 14),
    ]
    expected_total = {
        "messages": 3,
        "input_tokens": 22,
        "output_tokens": 34,
        "cache_read_input_tokens": 12,
        "cache_creation_input_tokens": 5,
    }
    for group in ("day", "model", "user", "prompt_version"):
        body = client.get(f"/api/v1/usage?group_by={group}").json()
        total = body["total"]
        assert {k: total[k] for k in expected_total} == expected_total, group
        assert Decimal(total["cost_usd"]) == Decimal("0.0042"), group
        for name in expected_total:
            assert sum(row[name] for row in body["results"]) == total[name]

    by_model = {r["key"]: r for r in client.get("/api/v1/usage?group_by=model").json()["results"]}
    assert by_model["claude-sonnet-4-6"]["input_tokens"] == 17
    assert Decimal(by_model["claude-haiku-4-5"]["cost_usd"]) == Decimal("0.0002")
    by_user = {r["key"]: r for r in client.get("/api/v1/usage?group_by=user").json()["results"]}
    assert by_user["alice-member"]["output_tokens"] == 8
    assert by_user["alice-admin"]["output_tokens"] == 26

    by_version = client.get("/api/v1/usage?group_by=prompt_version").json()["results"]
    assert [(r["key"], r["label"], r["messages"]) for r in by_version] == [
        (str(version.pk), "tutor v3", 1),
        (None, None, 2),
    ]

    ranged = client.get("/api/v1/usage?group_by=model&from=2026-11-02&to=2026-11-02").json()
    assert ranged["total"]["input_tokens"] == 12
    assert ranged["from"] == "2026-11-02"


@pytest.mark.parametrize(
    "query",
    ["group_by=week", "from=2026-13-01", "from=2026-11-03&to=2026-11-01", "colour=red"],
)
def test_usage_refuses_bad_queries(alice, query):
    response = alice.client().get(f"/api/v1/usage?{query}")
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_request"
