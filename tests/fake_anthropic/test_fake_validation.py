"""Validation (400), auth (401) and the error body, as the real API answers them."""

import httpx
import pytest

from fake_anthropic.testing import start_fake_anthropic

USER = {"role": "user", "content": "Hi"}
ASSISTANT = {"role": "assistant", "content": "Hello"}


def _without(data: dict, key: str) -> dict:
    return {k: v for k, v in data.items() if k != key}


BASE = {"model": "claude-sonnet-4-6", "max_tokens": 100, "messages": [USER]}

INVALID = {
    "no model": _without(BASE, "model"),
    "empty model": {**BASE, "model": ""},
    "no max_tokens": _without(BASE, "max_tokens"),
    "zero max_tokens": {**BASE, "max_tokens": 0},
    "negative max_tokens": {**BASE, "max_tokens": -5},
    "string max_tokens": {**BASE, "max_tokens": "100"},
    "bool max_tokens": {**BASE, "max_tokens": True},
    "no messages": _without(BASE, "messages"),
    "empty messages": {**BASE, "messages": []},
    "starts with assistant": {**BASE, "messages": [ASSISTANT, USER]},
    "two user messages in a row": {**BASE, "messages": [USER, USER]},
    "two assistant messages in a row": {**BASE, "messages": [USER, ASSISTANT, ASSISTANT]},
    "bad role": {**BASE, "messages": [{"role": "system", "content": "x"}]},
    "empty string content": {**BASE, "messages": [{"role": "user", "content": ""}]},
    "whitespace content": {**BASE, "messages": [{"role": "user", "content": "  \n "}]},
    "empty content list": {**BASE, "messages": [{"role": "user", "content": []}]},
    "whitespace text block": {
        **BASE,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "  "}]}],
    },
    "empty system block": {**BASE, "system": [{"type": "text", "text": ""}]},
    "bad cache ttl": {
        **BASE,
        "system": [
            {"type": "text", "text": "x", "cache_control": {"type": "ephemeral", "ttl": "2h"}}
        ],
    },
    "five cache breakpoints": {
        **BASE,
        "system": [
            {"type": "text", "text": f"part {i}", "cache_control": {"type": "ephemeral"}}
            for i in range(5)
        ],
    },
    "trailing space in final assistant turn": {
        **BASE,
        "messages": [USER, {"role": "assistant", "content": "Sure "}],
    },
    "stream not a bool": {**BASE, "stream": "yes"},
}


@pytest.mark.parametrize("data", INVALID.values(), ids=INVALID.keys())
def test_invalid_request_is_400(api, data):
    response = api.post("/v1/messages", json=data)

    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert error["error"]["message"]
    assert error["request_id"] == response.headers["request-id"]


def test_valid_variants_are_accepted(api):
    for data in (
        BASE,
        {**BASE, "messages": [USER, ASSISTANT, USER]},
        {**BASE, "messages": [USER, {"role": "assistant", "content": "Prefilled"}]},
        {**BASE, "system": "Be brief."},
        {**BASE, "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]},
    ):
        assert api.post("/v1/messages", json=data).status_code == 200, data


def test_unknown_model_is_404(api):
    response = api.post("/v1/messages", json={**BASE, "model": "gpt-4"})
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


def test_no_key_is_401(fake):
    response = httpx.post(
        fake.url + "/v1/messages", json=BASE, headers={"anthropic-version": "2023-06-01"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert response.headers["request-id"]


def test_bearer_and_x_api_key_are_both_accepted(fake):
    version = {"anthropic-version": "2023-06-01"}
    for auth in ({"authorization": "Bearer anything"}, {"x-api-key": "anything"}):
        response = httpx.post(fake.url + "/v1/messages", json=BASE, headers={**auth, **version})
        assert response.status_code == 200, auth


def test_missing_version_header_is_400(fake):
    response = httpx.post(fake.url + "/v1/messages", json=BASE, headers={"x-api-key": "k"})
    assert response.status_code == 400
    assert "anthropic-version" in response.json()["error"]["message"]


def test_server_with_a_key_refuses_other_keys():
    with start_fake_anthropic(api_key="sk-right") as fake:
        version = {"anthropic-version": "2023-06-01"}
        wrong = httpx.post(
            fake.url + "/v1/messages", json=BASE, headers={"x-api-key": "sk-wrong", **version}
        )
        right = httpx.post(
            fake.url + "/v1/messages",
            json=BASE,
            headers={"authorization": "Bearer sk-right", **version},
        )
    assert wrong.status_code == 401
    assert wrong.json()["error"]["type"] == "authentication_error"
    assert right.status_code == 200


def test_prompt_longer_than_the_context_window_is_400(api):
    data = {**BASE, "messages": [{"role": "user", "content": "word " * 60}]}
    response = api.post("/v1/messages", json=data, headers={"x-fake-context-window": "50"})
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("prompt is too long")
