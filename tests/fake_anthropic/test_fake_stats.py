"""Counters at /_fake/stats, /_fake/reset, and client disconnects seen by the server."""

import socket
import time
import uuid

import httpx

from fake_anthropic.testing import start_fake_anthropic

HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}


def _body(text: str, stream: bool = True) -> dict:
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": 100,
        "stream": stream,
        "messages": [{"role": "user", "content": text}],
    }


def _wait_for(predicate, timeout: float = 3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    return predicate()


def test_counters_and_reset():
    with start_fake_anthropic() as fake:
        url = fake.url + "/v1/messages"
        httpx.post(url, json=_body("one"), headers=HEADERS)
        httpx.post(url, json=_body("two", stream=False), headers=HEADERS)
        httpx.post(url, json=_body("three [[fake:status=529]]"), headers=HEADERS)
        httpx.post(url, json=_body("four [[fake:error-after=1]]"), headers=HEADERS)
        httpx.post(url, json={"model": "claude-sonnet-4-6"}, headers=HEADERS)
        stats = fake.stats()

        assert stats["requests"] == 5
        assert stats["streams_started"] == 2
        assert stats["streams_completed"] == 1
        assert stats["errors_injected"] == 2
        assert stats["client_disconnects"] == 0
        assert stats["active_streams"] == 0
        assert stats["peak_active_streams"] == 1
        assert stats["by_status"] == {"200": 3, "529": 1, "400": 1}

        reset = fake.reset()
        assert reset["requests"] == 0
        assert reset["by_status"] == {}
        assert fake.stats()["streams_started"] == 0


def test_client_closing_mid_stream_is_a_disconnect(fake):
    before = fake.stats()["client_disconnects"]
    body = _body(f"slow {uuid.uuid4()} [[fake:itl-ms=200]] [[fake:tokens=60]]")
    with (
        httpx.Client(base_url=fake.url, headers=HEADERS) as client,
        client.stream("POST", "/v1/messages", json=body) as response,
    ):
        for line in response.iter_lines():
            if line.startswith("event: content_block_delta"):
                break  # leaving the block closes the connection mid-stream
    assert _wait_for(lambda: fake.stats()["client_disconnects"] == before + 1)
    stats = fake.stats()
    assert stats["active_streams"] == 0


def test_disconnect_is_seen_during_a_long_stall(fake):
    """The handler is cancelled when the socket closes: no need to wait for the next write."""
    before = fake.stats()["client_disconnects"]
    host, port = fake.url.removeprefix("http://").split(":")
    payload = httpx.Request(
        "POST",
        fake.url + "/v1/messages",
        json=_body(f"stall {uuid.uuid4()} [[fake:stall-ms=30000]]"),
        headers=HEADERS,
    )
    head = f"POST /v1/messages HTTP/1.1\r\nHost: {host}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in payload.headers.items() if k.lower() != "host"
    )
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head.encode() + b"\r\n" + payload.read())
        received = b""
        while b"content_block_delta" not in received:
            received += sock.recv(65536)
    assert _wait_for(lambda: fake.stats()["client_disconnects"] == before + 1, timeout=2.0)
