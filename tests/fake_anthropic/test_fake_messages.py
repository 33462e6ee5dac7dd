"""The Messages API surface of fake_anthropic: streams, plain replies, usage, determinism."""

import json

from fake_anthropic.tokens import count_request, count_text


def test_stream_events_in_order_with_matching_event_lines(api, body, sse):
    response = api.post("/v1/messages", json=body(stream=True))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["request-id"].startswith("req_")
    events = sse(response.text)
    for name, data in events:
        assert name == data["type"]
    names = [name for name, _ in events]
    deltas = names.count("content_block_delta")
    assert deltas >= 5
    assert names == (
        ["message_start", "content_block_start", "ping"]
        + ["content_block_delta"] * deltas
        + ["content_block_stop", "message_delta", "message_stop"]
    )


def test_stream_usage_and_text(api, body, sse):
    request = body("Tell me something.", stream=True)
    events = sse(api.post("/v1/messages", json=request).text)

    start = events[0][1]["message"]
    assert start["usage"]["input_tokens"] == count_request(None, request["messages"])
    assert start["usage"]["output_tokens"] == 1
    text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    delta = next(d for n, d in events if n == "message_delta")
    assert delta["delta"]["stop_reason"] == "end_turn"
    assert delta["usage"]["output_tokens"] == count_text(text) == 40  # the default length
    assert delta["usage"]["input_tokens"] == start["usage"]["input_tokens"]


def test_deltas_are_a_few_characters_to_a_word(api, body, sse):
    events = sse(api.post("/v1/messages", json=body(stream=True)).text)
    deltas = [d["delta"]["text"] for n, d in events if n == "content_block_delta"]
    assert all(0 < len(d.strip()) <= 8 for d in deltas)


def test_plain_reply_shape_and_usage(api, body):
    request = body(system="You are a pirate who answers briefly.")
    response = api.post("/v1/messages", json=request)

    assert response.status_code == 200
    data = response.json()
    assert data["type"] == "message"
    assert data["role"] == "assistant"
    assert data["id"].startswith("msg_")
    assert data["stop_reason"] == "end_turn"
    text = data["content"][0]["text"]
    assert data["usage"] == {
        "input_tokens": count_request(request["system"], request["messages"]),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": count_text(text),
    }
    assert response.headers["request-id"].startswith("req_")


def test_reply_says_what_was_received(api, body):
    request = body(
        system=[
            {"type": "text", "text": "You are the support bot of ACME Rockets."},
            {
                "type": "text",
                "text": "[[conversation-summary]]\nCUSTOMER=Wile\nFACT: Wants rockets.",
            },
        ],
        messages=[
            {"role": "user", "content": "First question."},
            {"role": "assistant", "content": "First answer."},
            {"role": "user", "content": "Where is my order?"},
        ],
        max_tokens=1000,
    )
    response = api.post("/v1/messages", json=request, headers={"x-fake-tokens": "80"})
    text = response.json()["content"][0]["text"]

    assert text.startswith("Received 3 messages.")
    assert 'Last user message: "Where is my order?"' in text
    assert 'System prompt: "You are the support bot of..."' in text
    assert "Summary: present (2 lines)." in text


def test_reply_without_system_or_summary(api, body):
    text = api.post("/v1/messages", json=body("Hi")).json()["content"][0]["text"]
    assert "No system prompt." in text
    assert "Summary: none." in text


def test_same_request_same_reply_and_different_request_different_reply(api, body):
    first = api.post("/v1/messages", json=body("What is the capital of France?")).json()
    again = api.post("/v1/messages", json=body("What is the capital of France?")).json()
    other = api.post("/v1/messages", json=body("What is the capital of Spain?")).json()

    assert first["content"] == again["content"]
    assert first["content"] != other["content"]
    assert first["id"] != again["id"]


def test_streamed_and_plain_replies_have_the_same_text(api, body, sse):
    plain = api.post("/v1/messages", json=body("Same either way")).json()["content"][0]["text"]
    events = sse(api.post("/v1/messages", json=body("Same either way", stream=True)).text)
    streamed = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert streamed == plain


def test_max_tokens_cuts_the_reply(api, body, sse):
    data = api.post("/v1/messages", json=body(max_tokens=7)).json()
    assert data["stop_reason"] == "max_tokens"
    assert data["usage"]["output_tokens"] == 7
    assert count_text(data["content"][0]["text"]) == 7

    events = sse(api.post("/v1/messages", json=body(max_tokens=7, stream=True)).text)
    delta = next(d for n, d in events if n == "message_delta")
    assert delta["delta"]["stop_reason"] == "max_tokens"
    assert delta["usage"]["output_tokens"] == 7


def test_stop_sequence(api, body):
    data = api.post("/v1/messages", json=body("Hi", stop_sequences=["user message"])).json()
    assert data["stop_reason"] == "stop_sequence"
    assert data["stop_sequence"] == "user message"
    assert data["content"][0]["text"] == "Received 1 message. Last "


def test_count_tokens(api, body):
    request = body(system="Be brief.")
    del request["max_tokens"]
    response = api.post("/v1/messages/count_tokens", json=request)

    assert response.status_code == 200
    assert response.json() == {"input_tokens": count_request("Be brief.", request["messages"])}


def test_count_tokens_validates(api):
    response = api.post("/v1/messages/count_tokens", json={"model": "claude-sonnet-4-6"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_unknown_route_answers_the_api_error_body(api):
    response = api.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "not_found_error"
    assert response.json()["request_id"] == response.headers["request-id"]


def test_body_that_is_not_json(api):
    response = api.post(
        "/v1/messages", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert json.loads(response.text)["error"]["type"] == "invalid_request_error"
