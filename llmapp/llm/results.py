"""What a model call returns: token usage and the final reply."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Usage:
    """Tokens as the API reports them. Total input = input + cache creation + cache read."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0

    @property
    def total_input_tokens(self) -> int:
        return self.input_tokens + self.cache_read_input_tokens + self.cache_creation_input_tokens

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def by_kind(self) -> tuple[tuple[str, int], ...]:
        """``(kind, tokens)`` pairs, as the ``kind`` label of the token metrics names them."""
        return (
            ("input", self.input_tokens),
            ("output", self.output_tokens),
            ("cache_read", self.cache_read_input_tokens),
            ("cache_creation", self.cache_creation_input_tokens),
        )


@dataclass(frozen=True)
class ReplyResult:
    """A complete reply (the stream reached ``message_stop`` with a stop reason)."""

    text: str
    stop_reason: str
    usage: Usage
    ttft_ms: int | None  # None when the reply had no text at all
    latency_ms: int
    model: str
    request_id: str | None  # upstream `request-id` header, else the message id
    cost_usd: Decimal
    message_id: str | None = None
