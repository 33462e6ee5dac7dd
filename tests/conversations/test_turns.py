"""Chat turns over REST without streaming, against the live ASGI server and fake_anthropic:
the stored messages, faults (error body + failed assistant message), concurrency (409),
stop over REST (checked on the model side and in the database), automatic titles and usage."""

import concurrent.futures
import time
from decimal import Decimal

import httpx
import pytest

from conversations.models import Conversation, Message
from tests.conversations.conftest import auth, new_conversation, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def send(base_url, tenant, conversation, content, **kwargs) -> httpx.Response:
    return httpx.post(
        f"{base_url}/api/v1/conversations/{conversation.pk}/messages",
        json={"content": content, **kwargs},
        headers=auth(tenant),
        timeout=30,
    )


def test_a_turn_stores_both_messages_with_usage_cost_and_timings(alice, live_asgi_url):
    conversation = new_conversation(alice)
    response = send(live_asgi_url, alice, conversation, "Hello model [[fake:tokens=12]]")
    assert response.status_code == 201
    body = response.json()
    user, reply = body["user_message"], body["assistant_message"]
    assert (user["role"], user["seq"], user["content"]) == (
        "user",
        1,
        "Hello model [[fake:tokens=12]]",
    )
    assert (reply["role"], reply["seq"], reply["status"]) == ("assistant", 2, "complete")
    assert reply["stop_reason"] == "end_turn"
    assert reply["usage"]["output_tokens"] == 12
    assert reply["usage"]["input_tokens"] + reply["usage"]["cache_creation_input_tokens"] > 0
    assert reply["latency_ms"] >= reply["ttft_ms"] >= 0
    assert reply["request_id"].startswith("req_")
    assert reply["model"] == "claude-sonnet-4-6"

    stored = Message.objects.get(pk=reply["id"])
    assert stored.content == reply["content"]
    assert stored.content
    assert stored.output_tokens == 12
    assert stored.cost_usd > 0
    assert Decimal(reply["cost_usd"]) == stored.cost_usd
    conversation.refresh_from_db()
    assert conversation.last_seq == 2
    assert conversation.active_turn_id is None
    assert conversation.title == "Hello model [[fake:tokens=12]]"


def test_the_second_turn_sends_the_history_and_keeps_a_given_title(alice, live_asgi_url):
    conversation = new_conversation(alice, title="Mine", model="claude-haiku-4-5")
    send(live_asgi_url, alice, conversation, "first question")
    second = send(live_asgi_url, alice, conversation, "second question").json()
    # fake_anthropic's default reply says how many messages it received: user, assistant, user.
    assert "Received 3 messages" in second["assistant_message"]["content"]
    assert second["assistant_message"]["model"] == "claude-haiku-4-5"
    assert [m.seq for m in Message.objects.filter(conversation=conversation)] == [1, 2, 3, 4]
    conversation.refresh_from_db()
    assert conversation.title == "Mine"


@pytest.mark.parametrize(
    ("directive", "status", "code", "retryable", "partial"),
    [
        ("[[fake:status=529]]", 503, "model_overloaded", True, False),
        ("[[fake:status=429]]", 429, "model_rate_limited", True, False),
        ("[[fake:status=500]]", 502, "model_error", True, False),
        ("[[fake:status=400]]", 502, "model_bad_request", False, False),
        ("[[fake:error-after=3]]", 503, "model_overloaded", True, True),
        ("[[fake:cut-after=3]]", 502, "model_error", True, True),
        ("[[fake:ttft-ms=3000]]", 504, "model_timeout", True, False),
    ],
)
def test_model_faults_answer_an_error_body_and_store_a_failed_reply(
    alice, live_asgi_url, fast_failures, settings, directive, status, code, retryable, partial
):
    settings.LLM_FIRST_TOKEN_TIMEOUT_SECONDS = 0.5
    conversation = new_conversation(alice)
    content = f"please fail {directive} [[fake:tokens=30]]"
    started = time.monotonic()
    response = send(live_asgi_url, alice, conversation, content)
    assert time.monotonic() - started < 5
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    assert error["retryable"] is retryable
    assert error["message"]
    assert error["request_id"] == response.headers["X-Request-ID"]

    user, reply = Message.objects.filter(conversation=conversation).order_by("seq")
    assert (user.role, user.content, user.status) == ("user", content, "complete")
    assert (reply.role, reply.status, reply.error_code) == ("assistant", "failed", code)
    assert error["assistant_message"]["id"] == reply.pk
    assert error["user_message"]["id"] == user.pk
    if partial:  # what arrived before the failure is kept, and its input was billed
        assert reply.content
        assert reply.input_tokens + reply.cache_creation_input_tokens > 0
    else:
        assert reply.content == ""
    conversation.refresh_from_db()
    assert conversation.active_turn_id is None  # the claim is released: the next turn may run


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"content": ""}, 400, "invalid_request"),
        ({"content": "   \n\t "}, 400, "invalid_request"),
        ({}, 400, "invalid_request"),
        ({"content": 42}, 400, "invalid_request"),
        ({"content": "hi", "temperature": 1}, 400, "invalid_request"),
        ({"content": "x" * 101}, 413, "content_too_large"),
    ],
)
def test_bad_content_is_refused_before_anything_is_stored(
    alice, live_asgi_url, settings, body, status, code
):
    settings.CHAT_MAX_MESSAGE_CHARS = 100
    conversation = new_conversation(alice)
    response = httpx.post(
        f"{live_asgi_url}/api/v1/conversations/{conversation.pk}/messages",
        json=body,
        headers=auth(alice),
    )
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert not Message.objects.exists()


def test_malformed_json_is_400(alice, live_asgi_url):
    conversation = new_conversation(alice)
    response = httpx.post(
        f"{live_asgi_url}/api/v1/conversations/{conversation.pk}/messages",
        content=b'{"content": "unterminated',
        headers={**auth(alice), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_archived_conversation_refuses_new_messages(alice, live_asgi_url):
    conversation = new_conversation(alice)
    Conversation.objects.filter(pk=conversation.pk).update(archived=True)
    response = send(live_asgi_url, alice, conversation, "hello?")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conversation_archived"
    assert not Message.objects.exists()


def test_a_second_concurrent_turn_is_409_and_stop_over_rest_ends_the_first(
    alice, live_asgi_url, fake
):
    conversation = new_conversation(alice)
    before = fake.stats()
    slow = "tell me a long story [[fake:itl-ms=50]] [[fake:tokens=200]]"  # ~10 s in full
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        first = pool.submit(send, live_asgi_url, alice, conversation, slow)
        wait_for(lambda: fake.stats()["streams_started"] > before["streams_started"])
        time.sleep(0.4)  # some deltas have arrived

        second = send(live_asgi_url, alice, conversation, "me too")
        assert second.status_code == 409
        assert second.json()["error"]["code"] == "turn_in_progress"

        stop = httpx.post(
            f"{live_asgi_url}/api/v1/conversations/{conversation.pk}/stop", headers=auth(alice)
        )
        assert stop.status_code == 202
        assert stop.json()["stopping"] is True
        response = first.result(timeout=10)
    assert time.monotonic() - started < 5  # well before the ~10 s the full reply takes

    assert response.status_code == 201
    reply = response.json()["assistant_message"]
    assert reply["status"] == "stopped"
    stored = Message.objects.get(pk=reply["id"])
    assert stored.status == "stopped"
    assert 0 < len(stored.content) < 600
    assert stored.output_tokens > 0  # partial tokens are still counted
    assert (
        stored.input_tokens + stored.cache_creation_input_tokens + stored.cache_read_input_tokens
        > 0
    )
    assert stored.cost_usd > 0
    # The upstream stream was closed, not left running.
    after = wait_for(
        lambda: (s := fake.stats())["client_disconnects"] > before["client_disconnects"] and s
    )
    assert after["client_disconnects"] == before["client_disconnects"] + 1
    # The refused turn stored nothing: only the first turn's two messages exist.
    assert Message.objects.filter(conversation=conversation).count() == 2


def test_a_stale_claim_left_by_a_crashed_process_is_taken_over(alice, live_asgi_url, settings):
    import datetime as dt
    import uuid

    from django.utils import timezone

    settings.CHAT_TURN_STALE_SECONDS = 60
    conversation = new_conversation(alice)
    orphan = Message.objects.create(
        conversation=conversation, seq=2, role="assistant", status="streaming"
    )
    Conversation.objects.filter(pk=conversation.pk).update(
        last_seq=2,
        active_turn_id=uuid.uuid4(),
        turn_started_at=timezone.now() - dt.timedelta(seconds=61),
    )
    response = send(live_asgi_url, alice, conversation, "anyone there?")
    assert response.status_code == 201
    assert response.json()["user_message"]["seq"] == 3
    orphan.refresh_from_db()
    assert (orphan.status, orphan.error_code) == ("failed", "interrupted")


def test_usage_sums_real_turns(alice, live_asgi_url, fast_failures):
    conversation = new_conversation(alice)
    send(live_asgi_url, alice, conversation, "one [[fake:tokens=5]]")
    send(live_asgi_url, alice, conversation, "two [[fake:tokens=7]]")
    send(live_asgi_url, alice, conversation, "three [[fake:error-after=2]]")
    usage = httpx.get(f"{live_asgi_url}/api/v1/usage?group_by=model", headers=auth(alice)).json()
    replies = Message.objects.filter(role="assistant")
    assert usage["total"]["messages"] == 3
    for name in (
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
    ):
        assert usage["total"][name] == sum(getattr(m, name) for m in replies), name
    assert Decimal(usage["total"]["cost_usd"]) == sum(m.cost_usd for m in replies)
    assert usage["total"]["output_tokens"] >= 12


def test_a_burst_of_simultaneous_sends_yields_one_turn_and_409s(alice, live_asgi_url):
    conversation = new_conversation(alice)
    content = "race [[fake:itl-ms=20]] [[fake:tokens=40]]"
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        responses = list(
            pool.map(lambda _: send(live_asgi_url, alice, conversation, content), range(6))
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409, 409, 409, 409, 409]
    for response in responses:
        if response.status_code == 409:
            assert response.json()["error"]["code"] == "turn_in_progress"
    messages = list(Message.objects.filter(conversation=conversation).order_by("seq"))
    assert [(m.seq, m.role, m.status) for m in messages] == [
        (1, "user", "complete"),
        (2, "assistant", "complete"),
    ]


def test_the_reply_in_the_response_is_the_stored_row(alice, live_asgi_url):
    """The turn answers with the reply as it updated it (no re-read): exactly what is stored."""
    conversation = new_conversation(alice)
    response = send(live_asgi_url, alice, conversation, "hello there [[fake:tokens=7]]")
    assert response.status_code == 201
    listed = httpx.get(
        f"{live_asgi_url}/api/v1/conversations/{conversation.pk}/messages",
        headers=auth(alice),
        timeout=30,
    ).json()["results"]
    body = response.json()
    assert [body["user_message"], body["assistant_message"]] == listed
    assert body["assistant_message"]["prompt_version"]["name"] == conversation.prompt_name
    assert Decimal(body["assistant_message"]["cost_usd"]) > 0


def test_memory_upkeep_is_told_the_backlog_after_the_latest_summary(
    alice, live_asgi_url, monkeypatch
):
    """The turn already read the latest summary: it passes the backlog instead of re-reading."""
    from conversations import turn as turn_module
    from memory.models import Summary
    from memory.services import summary_backlog
    from tests.memory.conftest import add_messages

    calls = []
    monkeypatch.setattr(turn_module, "memory_after_turn", lambda **kwargs: calls.append(kwargs))
    conversation = new_conversation(alice)
    add_messages(conversation, [f"earlier message {seq}" for seq in range(1, 11)])
    Summary.objects.create(
        conversation=conversation, start_seq=1, end_seq=6, content="earlier", model="m"
    )
    response = send(live_asgi_url, alice, conversation, "and now? [[fake:tokens=5]]")
    assert response.status_code == 201
    assert response.json()["assistant_message"]["seq"] == 12
    wait_for(lambda: calls)
    assert calls[0]["unsummarised"] == 12 - 6
    assert calls[0]["unsummarised"] == summary_backlog(conversation_id=conversation.pk)


def test_memory_upkeep_gets_each_stored_reply_with_the_reported_usage(
    alice, live_asgi_url, monkeypatch
):
    """Calibration and the summary trigger get each stored reply's real input tokens."""
    from conversations import turn as turn_module

    calls = []
    monkeypatch.setattr(turn_module, "memory_after_turn", lambda **kwargs: calls.append(kwargs))
    conversation = new_conversation(alice)
    response = send(live_asgi_url, alice, conversation, "remember this [[fake:tokens=5]]")
    assert response.status_code == 201
    reply = Message.objects.get(pk=response.json()["assistant_message"]["id"])
    wait_for(lambda: calls)
    assert calls == [
        {
            "conversation_id": conversation.pk,
            "model": reply.model,
            "estimated_input_tokens": calls[0]["estimated_input_tokens"],
            "reported_input_tokens": reply.input_tokens
            + reply.cache_read_input_tokens
            + reply.cache_creation_input_tokens,
            "unsummarised": 2,  # the first exchange, no summary yet: both its messages
        }
    ]
    assert calls[0]["estimated_input_tokens"] > 0


def test_the_prompt_names_the_conversations_user_whoever_sends(alice):
    """{{user_name}} is the conversation's user: the caller's own, or (an admin writing in a
    member's conversation) the member's, not the admin's."""
    from conversations.turn import turn_prepare
    from tests.conversations.conftest import tenant_context
    from tests.prompts.conftest import make_prompt

    make_prompt(alice.org, "named", ["You talk with {{user_name}}."])
    member = alice.member.user
    member.first_name, member.last_name = "Ada", "Lovelace"
    member.save()
    conversation = new_conversation(alice, admin=False, prompt_name="named")

    own, _ = turn_prepare(tenant=tenant_context(alice, admin=False), conversation=conversation)
    by_admin, _ = turn_prepare(tenant=tenant_context(alice, admin=True), conversation=conversation)

    assert own.content == by_admin.content == "You talk with Ada Lovelace."


def test_a_context_too_large_is_a_413_and_releases_the_claim(alice, live_asgi_url, settings):
    """Building the context fails after the claim: the refusal still stores the user message,
    marks the reserved reply failed and frees the conversation for the next turn."""
    conversation = new_conversation(alice)
    settings.MEMORY_CONTEXT_BUDGET_TOKENS = 5  # not even the system prompt fits

    response = send(live_asgi_url, alice, conversation, "hello")

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "context_too_large"
    user, reply = Message.objects.filter(conversation=conversation).order_by("seq")
    assert (user.role, user.content, user.status) == ("user", "hello", "complete")
    assert (reply.status, reply.error_code) == ("failed", "context_too_large")
    conversation.refresh_from_db()
    assert conversation.active_turn_id is None

    settings.MEMORY_CONTEXT_BUDGET_TOKENS = 0
    assert send(live_asgi_url, alice, conversation, "again [[fake:tokens=3]]").status_code == 201


def test_the_database_failing_after_the_claim_is_a_503_and_releases_the_claim(
    alice, live_asgi_url, monkeypatch
):
    from django.db import OperationalError

    from conversations import turn as turn_module

    def context_build_fails(**kwargs):
        raise OperationalError("connection lost")  # the reads after the claim fail

    conversation = new_conversation(alice)
    with monkeypatch.context() as patch:
        patch.setattr(turn_module, "context_build", context_build_fails)
        response = send(live_asgi_url, alice, conversation, "hello")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"
    reply = Message.objects.get(conversation=conversation, role="assistant")
    assert (reply.status, reply.error_code) == ("failed", "database_unavailable")
    assert send(live_asgi_url, alice, conversation, "again [[fake:tokens=3]]").status_code == 201


def test_a_conversation_deleted_during_a_blocking_turn_is_a_404(alice, live_asgi_url):
    """Deleting a conversation mid-turn is refused by the API, but the admin can: the waiting
    client then gets a 404, not a 201 with an empty reply."""
    conversation = new_conversation(alice)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(
            send, live_asgi_url, alice, conversation, "slow [[fake:itl-ms=100]] [[fake:tokens=20]]"
        )
        wait_for(
            lambda: Message.objects.filter(
                conversation=conversation, role="assistant", status="streaming"
            ).exists()
        )
        Conversation.objects.filter(pk=conversation.pk).delete()  # as the admin would
        response = pending.result(timeout=30)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
