"""The context builder: what a turn sends to the model.

INTERFACE USED BY THE CHAT TURN (keep the signature): ``context_build``.

Context = the active system prompt + the latest summary (if any) + the most recent messages that
fit the budget (rules in ``memory.window``). Its cost does not grow with the history: it reads
the latest summary and at most ``MEMORY_WINDOW_MAX_MESSAGES`` messages after the summary's range
(two indexed queries), never the whole conversation.
"""

from django.conf import settings

from conversations.models import Message
from memory.models import Summary
from memory.tokens import budget_for, context_limit, margin_get
from memory.window import (
    BuiltContext,
    ContextTooLarge,
    SummaryRef,
    WindowRow,
    context_assemble,
)

__all__ = ["BuiltContext", "ContextTooLarge", "context_build", "context_model"]


def context_model(*, conversation, prompt) -> str:
    """The model a turn talks to: the conversation's own choice, else the prompt's."""
    return conversation.model or prompt.model or settings.LLM_DEFAULT_MODEL


def summary_latest(*, conversation_id) -> SummaryRef | None:
    """The newest summary of a conversation (the rolling one that covers 1..end_seq)."""
    row = (
        Summary.objects.filter(conversation_id=conversation_id)
        .order_by("-end_seq")
        .values_list("id", "start_seq", "end_seq", "content")
        .first()
    )
    return SummaryRef(*row) if row else None


def window_tail(*, conversation_id, after_seq: int) -> list[WindowRow]:
    """At most MEMORY_WINDOW_MAX_MESSAGES newest messages with seq > after_seq, oldest first."""
    rows = (
        Message.objects.filter(conversation_id=conversation_id, seq__gt=after_seq)
        .order_by("-seq")
        .values_list("seq", "role", "content", "status")[: settings.MEMORY_WINDOW_MAX_MESSAGES]
    )
    return [WindowRow(*row) for row in reversed(rows)]


def context_build(*, conversation, prompt) -> BuiltContext:
    """Everything the next turn sends: ``prompt`` is a prompts.selectors.ActivePrompt.

    Called after the newest user message is stored (it is then the last message, always sent).
    Deterministic for the same stored state and margin. ``estimated_tokens`` is the raw local
    estimate (pass it to ``memory_after_turn`` for calibration); ``budget`` is what it must stay
    under, the safety margin already taken off. Raises ContextTooLarge (413) only when the
    system prompt alone exceeds the budget.
    """
    model = context_model(conversation=conversation, prompt=prompt)
    margin = margin_get(model)
    summary = summary_latest(conversation_id=conversation.pk)
    rows = window_tail(conversation_id=conversation.pk, after_seq=summary.end_seq if summary else 0)
    built = context_assemble(
        prompt_text=prompt.content,
        summary=summary,
        rows=rows,
        budget=budget_for(model=model, max_tokens=prompt.max_tokens, margin=margin),
    )
    built.model = model
    built.margin = margin
    built.summarised_through = summary.end_seq if summary else 0
    built.limit = context_limit(model=model, max_tokens=prompt.max_tokens)
    return built
