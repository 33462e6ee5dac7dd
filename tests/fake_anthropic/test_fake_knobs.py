"""Knobs: injected statuses and stream faults, delays, lengths; directives, headers, defaults."""

import time
import uuid

import anthropic
import httpx
import pytest

from fake_anthropic.testing import start_fake_anthropic
from fake_anthropic.tokens import count_request, count_text


def _text(events) -> str:
    return "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (403, "permission_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (503, "api_error"),
        (529, "overloaded_error"),
    ],
)
def test_status_directive_answers_that_error_before_streaming(api, body, status, kind):
    response = api.post("/v1/messages", json=body(f"Hi [[fake:status={status}]]", stream=True))

    assert response.status_code == status
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == kind
    assert response.headers["request-id"]
    assert ("retry-after" in response.headers) == (status == 429)


def test_status_header(api, body):
    response = api.post("/v1/messages", json=body(), headers={"x-fake-status": "529"})
    assert response.status_code == 529
    assert response.json()["error"]["type"] == "overloaded_error"


def test_directive_only_counts_in_the_last_user_message(api, body):
    data = body(
        messages=[
            {"role": "user", "content": "Old [[fake:status=529]]"},
            {"role": "assistant", "content": "Answer"},
            {"role": "user", "content": "New"},
        ]
    )
    assert api.post("/v1/messages", json=data).status_code == 200


def test_directive_beats_header(api, body):
    response = api.post(
        "/v1/messages", json=body("Hi [[fake:tokens=12]]"), headers={"x-fake-tokens": "30"}
    )
    assert response.json()["usage"]["output_tokens"] == 12


def test_tokens_directive_and_header(api, body):
    assert (
        api.post("/v1/messages", json=body("Hi [[fake:tokens=25]]")).json()["usage"][
            "output_tokens"
        ]
        == 25
    )
    response = api.post("/v1/messages", json=body("Hi"), headers={"x-fake-tokens": "9"})
    assert response.json()["usage"]["output_tokens"] == 9


def test_directives_are_stripped_from_the_echo_but_counted_as_input(api, body):
    data = body("Where is my parcel? [[fake:tokens=60]]")
    reply = api.post("/v1/messages", json=data).json()

    text = reply["content"][0]["text"]
    assert 'Last user message: "Where is my parcel?"' in text
    assert "[[fake:" not in text
    assert reply["usage"]["input_tokens"] == count_request(None, data["messages"])
    assert reply["usage"]["input_tokens"] > count_request(
        None, [{"role": "user", "content": "Where is my parcel?"}]
    )


def test_bad_knob_values_are_400(api, body):
    assert api.post("/v1/messages", json=body("Hi [[fake:status=200]]")).status_code == 400
    response = api.post("/v1/messages", json=body(), headers={"x-fake-itl-ms": "fast"})
    assert response.status_code == 400
    response = api.post("/v1/messages", json=body("Hi [[fake:itl=5]]"))
    assert response.status_code == 400
    assert "unknown directive" in response.json()["error"]["message"]


def test_error_after_sends_an_error_event_then_ends(api, body, sse):
    response = api.post("/v1/messages", json=body("Hi [[fake:error-after=3]]", stream=True))
    events = sse(response.text)

    assert response.status_code == 200
    names = [n for n, _ in events]
    assert names.count("content_block_delta") == 3
    assert names[-1] == "error"
    assert events[-1][1] == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    assert "message_stop" not in names


def _read_stream(api, data, received: list[str]) -> None:
    with api.stream("POST", "/v1/messages", json=data) as response:
        for chunk in response.iter_text():
            received.append(chunk)


def test_cut_after_drops_the_connection_mid_body(api, body):
    received = []
    with pytest.raises(httpx.RemoteProtocolError):
        _read_stream(api, body("Hi [[fake:cut-after=2]]", stream=True), received)
    raw = "".join(received)
    assert raw.count("event: content_block_delta") == 2
    assert "message_stop" not in raw


def test_end_after_ends_cleanly_without_message_stop(api, body, sse):
    response = api.post("/v1/messages", json=body("Hi [[fake:end-after=4]]", stream=True))
    names = [n for n, _ in sse(response.text)]

    assert response.status_code == 200
    assert names.count("content_block_delta") == 4
    assert "message_delta" not in names
    assert "message_stop" not in names


def test_ttft_and_itl_delays(api, body):
    started = time.perf_counter()
    first_at = None
    with api.stream(
        "POST", "/v1/messages", json=body("Hi [[fake:ttft-ms=300]] [[fake:itl-ms=20]]", stream=True)
    ) as r:
        for line in r.iter_lines():
            if first_at is None and line == "event: content_block_delta":
                first_at = time.perf_counter() - started
    total = time.perf_counter() - started
    assert first_at >= 0.3
    # ~27 deltas for 40 tokens: 26 gaps of 20 ms after the first delta.
    assert total - first_at >= 0.4


def test_stall_pauses_after_the_first_delta(api, body):
    stamps = []
    with api.stream(
        "POST", "/v1/messages", json=body("Hi [[fake:stall-ms=400]]", stream=True)
    ) as r:
        for line in r.iter_lines():
            if line == "event: content_block_delta":
                stamps.append(time.perf_counter())
    assert stamps[1] - stamps[0] >= 0.35
    assert stamps[-1] - stamps[1] < 0.3


def test_cli_defaults_apply_and_directives_override_them():
    with start_fake_anthropic(tokens=15, ttft_ms=250) as fake:
        headers = {"x-api-key": fake.api_key, "anthropic-version": "2023-06-01"}
        base = {"model": "claude-sonnet-4-6", "max_tokens": 100}
        started = time.perf_counter()
        default = httpx.post(
            fake.url + "/v1/messages",
            headers=headers,
            json={**base, "messages": [{"role": "user", "content": "Hi"}]},
        ).json()
        slow = time.perf_counter() - started
        started = time.perf_counter()
        override = httpx.post(
            fake.url + "/v1/messages",
            headers=headers,
            json={
                **base,
                "messages": [
                    {"role": "user", "content": "Hi [[fake:ttft-ms=0]] [[fake:tokens=5]]"}
                ],
            },
        ).json()
        fast = time.perf_counter() - started
    assert default["usage"]["output_tokens"] == 15
    assert count_text(default["content"][0]["text"]) == 15
    assert slow >= 0.25
    assert override["usage"]["output_tokens"] == 5
    assert fast < 0.2


async def test_fail_first_fails_k_times_then_succeeds_for_sdk_retries(fake):
    before = fake.stats()
    # A unique body: fail-first counts are keyed by the request body.
    content = f"Retry me {uuid.uuid4()} [[fake:fail-first=2]]"
    async with anthropic.AsyncAnthropic(
        api_key="k", base_url=fake.url, max_retries=2, timeout=10
    ) as client:
        message = await client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=50,
            messages=[{"role": "user", "content": content}],
        )
        assert message.stop_reason == "end_turn"
        after = fake.stats()
        assert after["requests"] - before["requests"] == 3
        assert after["by_status"].get("529", 0) - before["by_status"].get("529", 0) == 2
        # Once it has succeeded, the same body keeps succeeding.
        again = await client.with_options(max_retries=0).messages.create(
            model="claude-sonnet-4-6",
            max_tokens=50,
            messages=[{"role": "user", "content": content}],
        )
        assert again.content[0].text == message.content[0].text


def test_fail_first_without_retries_surfaces_529(api, body):
    data = body(f"Once {uuid.uuid4()} [[fake:fail-first=1]]")
    first = api.post("/v1/messages", json=data)
    second = api.post("/v1/messages", json=data)
    assert first.status_code == 529
    assert first.json()["error"]["type"] == "overloaded_error"
    assert second.status_code == 200


def test_non_streaming_faults(api, body):
    assert api.post("/v1/messages", json=body("Hi [[fake:error-after=1]]")).status_code == 529
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/v1/messages", json=body("Hi [[fake:cut-after=1]]"))
