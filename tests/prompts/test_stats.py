"""Per-version stats equal the aggregate over the messages, computed here independently in
Python, and an organisation only ever sees its own messages' figures (also for a global prompt)."""

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.models import Message
from prompts.selectors import prompt_stats

from .conftest import add_assistant_message, make_conversation, make_prompt

pytestmark = pytest.mark.django_db


def expected(messages: list[Message]) -> dict:
    """The figures for one version, from the rows themselves."""
    if not messages:
        return {"uses": 0, "avg_input_tokens": None, "error_rate": None, "first_used_at": None}
    latencies = [m.latency_ms for m in messages if m.latency_ms is not None]
    failed = sum(m.status == Message.Status.FAILED for m in messages)
    return {
        "uses": len(messages),
        "failed": failed,
        "avg_input_tokens": round(sum(m.input_tokens for m in messages) / len(messages), 2),
        "avg_output_tokens": round(sum(m.output_tokens for m in messages) / len(messages), 2),
        "avg_latency_ms": round(sum(latencies) / len(latencies), 2) if latencies else None,
        "error_rate": round(failed / len(messages), 4),
        "first_used_at": min(m.created_at for m in messages),
        "last_used_at": max(m.created_at for m in messages),
    }


def seed_messages(tenant, prompt, versions: list[int], count: int, rng) -> list[Message]:
    conversation = make_conversation(tenant, prompt_name=prompt.name)
    rows = []
    for i in range(count):
        version = prompt.versions.get(version=rng.choice(versions))
        failed = rng.random() < 0.25
        message = add_assistant_message(
            conversation,
            version,
            status=Message.Status.FAILED if failed else Message.Status.COMPLETE,
            error_code="overloaded" if failed else "",
            input_tokens=rng.randint(10, 5000),
            output_tokens=0 if failed else rng.randint(1, 900),
            latency_ms=None if failed and i % 2 else rng.randint(100, 9000),
        )
        # Spread creation times so first/last use are distinct.
        Message.objects.filter(pk=message.pk).update(
            created_at=timezone.now() - timedelta(minutes=rng.randint(0, 10_000))
        )
        message.refresh_from_db()
        rows.append(message)
    # Noise that must not count: user messages and assistant messages without a version.
    Message.objects.create(conversation=conversation, seq=10_000, role="user", prompt_version=None)
    Message.objects.create(
        conversation=conversation, seq=10_001, role="assistant", input_tokens=99_999
    )
    return rows


def compare(got: dict, want: dict) -> None:
    for key, value in want.items():
        assert got[key] == value, (key, got[key], value)


def test_stats_equal_the_aggregate_over_messages_for_the_callers_org(alice, bob):
    rng = random.Random(5)
    shared = make_prompt(None, "shared", ["v1", "v2", "v3"], active=2)
    alice_rows = seed_messages(alice, shared, [1, 2], 40, rng)
    bob_rows = seed_messages(bob, shared, [1, 2], 25, rng)

    response = alice.client(admin=False).get("/api/v1/prompts/shared/stats")
    assert response.status_code == 200
    body = response.json()
    assert body["scope"] == "global"
    by_version = {v["version"]: v for v in body["versions"]}
    assert sorted(by_version) == [1, 2, 3]
    assert by_version[2]["is_active"] is True
    for number in (1, 2, 3):
        want = expected([m for m in alice_rows if m.prompt_version.version == number])
        if want.get("first_used_at"):
            want["first_used_at"] = want["first_used_at"].isoformat().replace("+00:00", "Z")
            want["last_used_at"] = want["last_used_at"].isoformat().replace("+00:00", "Z")
        compare(by_version[number], want)
    assert by_version[3]["uses"] == 0

    # Staff (organization None) see every organisation's messages.
    everyone = {s.version: s.__dict__ for s in prompt_stats(prompt=shared)}
    for number in (1, 2):
        compare(
            everyone[number],
            expected([m for m in alice_rows + bob_rows if m.prompt_version.version == number]),
        )


def test_compare_reports_both_versions_stats_and_their_difference(alice):
    rng = random.Random(7)
    prompt = make_prompt(alice.org, "support", ["short", "long"], active=1)
    rows = seed_messages(alice, prompt, [1, 2], 30, rng)
    body = alice.client().get("/api/v1/prompts/support/compare", {"a": 1, "b": 2}).json()
    want_a = expected([m for m in rows if m.prompt_version.version == 1])
    want_b = expected([m for m in rows if m.prompt_version.version == 2])
    assert body["stats_a"]["uses"] == want_a["uses"]
    assert body["stats_b"]["uses"] == want_b["uses"]
    assert body["delta"]["uses"] == want_b["uses"] - want_a["uses"]
    assert body["delta"]["avg_output_tokens"] == pytest.approx(
        want_b["avg_output_tokens"] - want_a["avg_output_tokens"], abs=0.02
    )
    assert body["delta"]["error_rate"] == pytest.approx(
        want_b["error_rate"] - want_a["error_rate"], abs=1e-4
    )
