"""The few error codes a model call can end with, and how upstream failures map onto them.

| code | when | retryable |
| --- | --- | --- |
| ``model_overloaded`` | 529, or an ``overloaded_error`` event mid-stream | yes |
| ``model_rate_limited`` | 429, or a ``rate_limit_error`` event | yes |
| ``model_timeout`` | connect/read timeouts, no first token in time, total time exceeded, 408/504 | yes |
| ``model_error`` | other 5xx, connection errors, a stream cut before ``message_stop``, anything unknown;
  401/403 (our credentials) too, but not retryable | yes (401/403: no) |
| ``model_bad_request`` | 400, 404, 413, 422 and other 4xx: retrying the same request cannot help | no |

``LLMError.message`` is safe to show a user; ``detail`` (upstream status and error type) is for
logs only.
"""

from __future__ import annotations

from decimal import Decimal

import anthropic
import httpx2

from llmapp.llm.results import Usage

MODEL_OVERLOADED = "model_overloaded"
MODEL_RATE_LIMITED = "model_rate_limited"
MODEL_TIMEOUT = "model_timeout"
MODEL_ERROR = "model_error"
MODEL_BAD_REQUEST = "model_bad_request"

CODES = (MODEL_OVERLOADED, MODEL_RATE_LIMITED, MODEL_TIMEOUT, MODEL_ERROR, MODEL_BAD_REQUEST)

MESSAGES = {
    MODEL_OVERLOADED: "The model is overloaded right now. Please try again shortly.",
    MODEL_RATE_LIMITED: "Too many requests to the model. Please try again shortly.",
    MODEL_TIMEOUT: "The model took too long to answer. Please try again.",
    MODEL_ERROR: "The model failed to complete the reply. Please try again.",
    MODEL_BAD_REQUEST: "The model refused the request.",
}

_BY_ERROR_TYPE = {
    "overloaded_error": MODEL_OVERLOADED,
    "rate_limit_error": MODEL_RATE_LIMITED,
    "timeout_error": MODEL_TIMEOUT,
    "invalid_request_error": MODEL_BAD_REQUEST,
    "request_too_large": MODEL_BAD_REQUEST,
    "not_found_error": MODEL_BAD_REQUEST,
}


class LLMError(Exception):
    """A model call that did not produce a complete reply.

    ``partial_text`` and ``usage`` hold what had arrived before the failure (usage as upstream
    reported it in ``message_start``/``message_delta``), so the caller can keep and bill it.
    """

    def __init__(
        self,
        code: str,
        message: str,
        retryable: bool,
        partial_text: str = "",
        usage: Usage | None = None,
        *,
        detail: str | None = None,
        request_id: str | None = None,
        cost_usd: Decimal = Decimal(0),
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable
        self.partial_text = partial_text
        self.usage = usage or Usage()
        self.detail = detail
        self.request_id = request_id
        self.cost_usd = cost_usd

    def as_dict(self) -> dict[str, object]:
        """The public part: ``{"code", "message", "retryable"}``."""
        return {"code": self.code, "message": self.message, "retryable": self.retryable}


def _from_status(status: int, error_type: str | None) -> tuple[str, bool]:
    if status == 200 or (status < 400 and error_type):  # an `event: error` inside a 200 stream
        return _BY_ERROR_TYPE.get(error_type or "", MODEL_ERROR), error_type not in (
            "invalid_request_error",
            "request_too_large",
            "not_found_error",
        )
    if status == 529:
        return MODEL_OVERLOADED, True
    if status == 429:
        return MODEL_RATE_LIMITED, True
    if status in (408, 504):
        return MODEL_TIMEOUT, True
    if status in (401, 403):
        return MODEL_ERROR, False
    if 400 <= status < 500:
        return MODEL_BAD_REQUEST, False
    return MODEL_ERROR, True


def classify(exc: BaseException) -> tuple[str, bool, str]:
    """(code, retryable, detail for logs) of an exception raised by a model call."""
    if isinstance(exc, LLMError):
        return exc.code, exc.retryable, exc.detail or ""
    if isinstance(exc, anthropic.APIStatusError):
        code, retryable = _from_status(exc.status_code, exc.type)
        return code, retryable, f"status={exc.status_code} type={exc.type}"
    if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException | TimeoutError):
        return MODEL_TIMEOUT, True, type(exc).__name__
    if isinstance(exc, anthropic.APIConnectionError | httpx2.HTTPError):
        return MODEL_ERROR, True, type(exc).__name__
    return MODEL_ERROR, True, f"unexpected {type(exc).__name__}"


def error_for(code: str, retryable: bool | None = None, **kwargs: object) -> LLMError:
    """An ``LLMError`` with the standard user-facing message for ``code``."""
    if retryable is None:
        retryable = code != MODEL_BAD_REQUEST
    return LLMError(code, MESSAGES[code], retryable, **kwargs)  # type: ignore[arg-type]
