"""The one place in the app that calls the model (the real ``anthropic`` SDK, async).

Streaming a chat turn::

    from llmapp import llm

    async with llm.open_stream(model=..., system=[prompt, summary_block], messages=window,
                               max_tokens=1024, metadata={"user_id": opaque}) as stream:
        async for delta in stream:      # text deltas as they arrive
            await send(delta)
    result = stream.result              # ReplyResult: text, stop_reason, usage, ttft_ms,
                                        # latency_ms, model, request_id, cost_usd

* A failure raises ``llm.LLMError(code, message, retryable, partial_text, usage)`` with one of
  the codes in ``llm.errors`` (``model_overloaded``, ``model_rate_limited``, ``model_timeout``,
  ``model_error``, ``model_bad_request``). A stream that ends without ``message_stop`` is a
  ``model_error``, never a short "success".
* Cancellation (the user pressed stop: ``asyncio.CancelledError``), ``break`` or any exception
  in the ``async with`` body closes the upstream HTTP connection at once and counts the call as
  ``stopped``; ``stream.text_so_far``, ``stream.usage_so_far`` and ``stream.cost_usd_so_far``
  still hold what was received (usage as the API reported it in ``message_start`` and
  ``message_delta``; the API reports output tokens only at the end, so a stopped stream's
  output count is its ``message_start`` value).
* Retries: the SDK retries the initial request (``LLM_MAX_RETRIES``; 429, 5xx incl. 529,
  connection errors), i.e. only before any token reached the caller. Once events flow nothing
  is retried: an upstream failure is an ``LLMError`` whose ``retryable`` tells the caller
  whether a new attempt may succeed.
* Timeouts: connect (``LLM_CONNECT_TIMEOUT_SECONDS``), first text delta
  (``LLM_FIRST_TOKEN_TIMEOUT_SECONDS``, counted from the start, retries included) and total
  (``LLM_TOTAL_TIMEOUT_SECONDS``); the last two are enforced only while waiting on upstream,
  never while the caller handles a delta. All end as ``model_timeout``.
* ``system`` is a string or a list of text blocks; ``cache_control`` goes on the last block,
  so prompt + summary form the cached prefix and repeated turns are billed as cache reads.

Also: ``stream_reply(...)`` (async generator: deltas, then one ``ReplyResult``),
``complete(...)`` (awaitable ``ReplyResult``), ``complete_sync(...)`` (for Celery: a fresh loop
and its own client, closed afterwards), ``compute_cost(model, usage)``. One ``AsyncAnthropic``
client per event loop (``llm.client``). Metrics in ``llm.metrics``; logs never hold text or keys.
"""

from llmapp.llm.client import close_client, get_client
from llmapp.llm.errors import (
    MODEL_BAD_REQUEST,
    MODEL_ERROR,
    MODEL_OVERLOADED,
    MODEL_RATE_LIMITED,
    MODEL_TIMEOUT,
    LLMError,
)
from llmapp.llm.pricing import compute_cost
from llmapp.llm.results import ReplyResult, Usage
from llmapp.llm.streaming import (
    ReplyStream,
    build_system,
    complete,
    complete_sync,
    open_stream,
    stream_reply,
)

__all__ = [
    "MODEL_BAD_REQUEST",
    "MODEL_ERROR",
    "MODEL_OVERLOADED",
    "MODEL_RATE_LIMITED",
    "MODEL_TIMEOUT",
    "LLMError",
    "ReplyResult",
    "ReplyStream",
    "Usage",
    "build_system",
    "close_client",
    "complete",
    "complete_sync",
    "compute_cost",
    "get_client",
    "open_stream",
    "stream_reply",
]
