"""Chat turns are attributed in Prometheus: by organisation, model and prompt version."""

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from conversations.models import Message
from tests.conversations.conftest import auth, new_conversation

pytestmark = pytest.mark.django_db(transaction=True)


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_turn_is_counted_for_its_organisation_model_and_prompt_version(alice, live_asgi_url):
    conversation = new_conversation(alice)
    labels = {"org": "alice", "model": "claude-sonnet-4-6"}
    turns_before = sample(
        "chat_turns_total", **labels, prompt_version="default-system-prompt:v1", status="complete"
    )
    output_before = sample("chat_tokens_total", **labels, kind="output")
    cost_before = sample("chat_cost_usd_total", **labels)

    response = httpx.post(
        f"{live_asgi_url}/api/v1/conversations/{conversation.pk}/messages",
        json={"content": "count me [[fake:tokens=17]]"},
        headers=auth(alice),
        timeout=30,
    )
    assert response.status_code == 201
    reply = Message.objects.get(pk=response.json()["assistant_message"]["id"])

    assert (
        sample(
            "chat_turns_total",
            **labels,
            prompt_version="default-system-prompt:v1",
            status="complete",
        )
        == turns_before + 1
    )
    assert sample("chat_tokens_total", **labels, kind="output") == output_before + 17
    assert sample("chat_cost_usd_total", **labels) == pytest.approx(
        cost_before + float(reply.cost_usd)
    )
    assert sample("chat_turns_in_flight") == 0

    # and they are served by /metrics
    text = httpx.get(f"{live_asgi_url}/metrics", timeout=10).text
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {"chat_turns", "chat_tokens", "chat_cost_usd", "chat_turns_in_flight"} <= names
