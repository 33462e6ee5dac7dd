"""Prometheus metrics of chat turns, attributed to the organisation (a label bounded by the
number of tenants) and the prompt version. The ``llm_*`` metrics of llmapp/llm count the model
calls themselves; these count what each tenant got and paid for."""

from prometheus_client import Counter, Gauge

TURNS = Counter(
    "chat_turns_total",
    "Chat turns by organisation, model, prompt version and how they ended.",
    ["org", "model", "prompt_version", "status"],
)
TOKENS = Counter(
    "chat_tokens_total",
    "Tokens of chat turns by organisation, model and kind (input, output, cache_read, "
    "cache_creation).",
    ["org", "model", "kind"],
)
COST = Counter("chat_cost_usd_total", "Cost of chat turns in USD.", ["org", "model"])
IN_FLIGHT = Gauge(
    "chat_turns_in_flight",
    "Chat turns generating now (REST, SSE and WebSocket).",
    multiprocess_mode="livesum",
)


def record_turn(*, org: str, prompt_version: str, outcome) -> None:
    """Count one finished turn (``outcome`` is a conversations.turn.TurnOutcome)."""
    model = outcome.model or "unknown"
    TURNS.labels(org=org, model=model, prompt_version=prompt_version, status=outcome.status).inc()
    for kind, value in outcome.usage.by_kind():
        if value:
            TOKENS.labels(org=org, model=model, kind=kind).inc(value)
    if outcome.cost_usd:
        COST.labels(org=org, model=model).inc(float(outcome.cost_usd))
