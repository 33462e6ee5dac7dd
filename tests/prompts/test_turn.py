"""A chat turn after an activation uses the new version: the real chat endpoint, the real SDK
against fake_anthropic, and the version recorded on the assistant message."""

import pytest

from conversations.models import Message

from .conftest import make_prompt


def turn(client, conversation_id: str) -> dict:
    response = client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        {"content": "Hello there", "stream": False},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()["assistant_message"]


@pytest.mark.django_db(transaction=True)
def test_the_turn_after_an_activation_uses_the_new_version(alice, bob):
    prompt = make_prompt(alice.org, "support", ["You are terse.", "You are verbose."], active=1)
    v1, v2 = prompt.versions.get(version=1), prompt.versions.get(version=2)
    client = alice.client()
    conversation = client.post("/api/v1/conversations", {"prompt": "support"}, format="json").json()

    first = turn(client, conversation["id"])
    assert first["prompt_version"]["id"] == v1.pk

    activated = client.put("/api/v1/prompts/support/activate/2", {"reason": "try"}, format="json")
    assert activated.status_code == 200

    second = turn(client, conversation["id"])
    assert second["prompt_version"]["id"] == v2.pk
    assert second["prompt_version"]["version"] == 2
    assert Message.objects.get(pk=second["id"]).prompt_version_id == v2.pk

    # And back: a rollback takes effect on the next turn too.
    assert client.post("/api/v1/prompts/support/rollback").status_code == 200
    assert turn(client, conversation["id"])["prompt_version"]["id"] == v1.pk

    # bob's turns (global default prompt) never pick up alice's prompt.
    bob_conversation = bob.client().post("/api/v1/conversations", {}, format="json").json()
    bob_reply = turn(bob.client(), bob_conversation["id"])
    assert bob_reply["prompt_version"]["name"] == "default-system-prompt"

    stats = client.get("/api/v1/prompts/support/stats").json()["versions"]
    assert {v["version"]: v["uses"] for v in stats} == {2: 1, 1: 2}
