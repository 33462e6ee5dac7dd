"""Writes for memory: calibration after a turn, and rolling summaries.

INTERFACE USED BY THE CHAT TURN (keep the signature): ``memory_after_turn``.

A summarisation run (``summary_generate``) works in three steps so that no database transaction
or lock is held across the model call:

1. plan: read the latest summary and the conversation's ``last_seq``; the next range is
   ``previous.end_seq + 1`` (or 1) up to ``last_seq - MEMORY_KEEP_RECENT``;
2. call the model (``llmapp.llm.complete_sync``) with the previous summary and that range;
3. store (``summary_store``): in a transaction holding the Conversation row lock, insert the
   Summary only if the previous one is still the latest. A concurrent run that got there first
   makes this one a no-op; the database constraints (unique start and end, valid range, and on
   PostgreSQL the chain foreign key and the no-overlap exclusion) back the rule up.

A failed, timed-out, empty or truncated summary raises ``SummaryFailed`` and stores nothing; the
task retries it with backoff, and the context meanwhile uses the window alone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import structlog
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction

from conversations.models import Conversation, Message
from llmapp import llm
from memory.models import Summary
from memory.tokens import budget_for, estimate_message, margin_calibrate
from memory.window import SummaryRef

log = structlog.get_logger(__name__)

SUMMARIZE_MARKER = "[[summarize]]"
SUMMARIZER_PROMPT = f"""{SUMMARIZE_MARKER}
You maintain the rolling memory of a conversation between a user and an assistant. You are given
the previous summary (if any) and the next messages of the conversation. Write one updated
summary that replaces the previous one. Keep, verbatim and on their own lines, every line of the
form KEY=VALUE and every sentence starting with "FACT:". Then add the names, decisions, open
questions and preferences needed to continue the conversation, as short plain sentences. Write
only the summary."""

_PENDING_KEY = "memory:summarize:pending:{id}"
_LOCK_KEY = "memory:summarize:lock:{id}"
_GOOD_STOP_REASONS = {"end_turn", "stop_sequence"}


class SummaryFailed(Exception):
    """The summariser produced nothing usable; nothing was stored. ``retryable`` as in llm."""

    def __init__(self, reason: str, *, retryable: bool = True):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


@dataclass(frozen=True)
class SummaryPlan:
    conversation_id: uuid.UUID
    previous: SummaryRef | None
    start_seq: int
    end_seq: int
    model: str


def _summary_model(conversation: Conversation) -> str:
    return settings.MEMORY_SUMMARY_MODEL or conversation.model or settings.LLM_DEFAULT_MODEL


def _latest(conversation_id) -> SummaryRef | None:
    row = (
        Summary.objects.filter(conversation_id=conversation_id)
        .order_by("-end_seq")
        .values_list("id", "start_seq", "end_seq", "content")
        .first()
    )
    return SummaryRef(*row) if row else None


def summary_plan(*, conversation_id) -> SummaryPlan | None:
    """The next range to summarise, or None when fewer than one message is due.

    Everything but the newest MEMORY_KEEP_RECENT messages is due; a range is capped at
    MEMORY_WINDOW_MAX_MESSAGES messages (the rest is done by the next run).
    """
    conversation = Conversation.objects.filter(pk=conversation_id).only("last_seq", "model").first()
    if conversation is None:
        return None
    previous = _latest(conversation_id)
    start = previous.end_seq + 1 if previous else 1
    end = min(
        conversation.last_seq - settings.MEMORY_KEEP_RECENT,
        start + settings.MEMORY_WINDOW_MAX_MESSAGES - 1,
    )
    if end < start:
        return None
    return SummaryPlan(conversation_id, previous, start, end, _summary_model(conversation))


def summarizer_request(
    *, previous: SummaryRef | None, messages: list[tuple[int, str, str]]
) -> list[dict]:
    """The one user message a summariser call sends: the previous summary, then a transcript.

    Each message's text keeps its own lines (a header line names its seq and role), so
    ``KEY=VALUE`` lines stay at the start of a line. Only this message carries conversation
    text, so any ``[[fake:...]]`` directive in a summarised message reaches fake_anthropic (the
    tests use that to inject summariser faults).
    """
    # Headers are bracketed lines so an extractive summariser does not take them for content.
    parts: list[str] = []
    if previous is not None:
        parts.append(
            f"[[previous summary: messages {previous.start_seq}-{previous.end_seq}]]\n"
            f"{previous.content.strip()}"
        )
    else:
        parts.append("[[previous summary: none]]")
    for seq, role, content in messages:
        parts.append(f"[[message {seq}, {role}]]\n{content.strip()}")
    return [{"role": "user", "content": "\n\n".join(parts)}]


def _range_messages(plan: SummaryPlan) -> tuple[list[tuple[int, str, str]], int]:
    """The plan's messages worth summarising, cut so the request fits the summariser model."""
    rows = (
        Message.objects.filter(
            conversation_id=plan.conversation_id,
            seq__gte=plan.start_seq,
            seq__lte=plan.end_seq,
        )
        .exclude(content="")
        .order_by("seq")
        .values_list("seq", "role", "content")
    )
    budget = budget_for(model=plan.model, max_tokens=settings.MEMORY_SUMMARY_MAX_TOKENS)
    used = estimate_message(SUMMARIZER_PROMPT) + (
        estimate_message(plan.previous.content) if plan.previous else 0
    )
    kept: list[tuple[int, str, str]] = []
    end = plan.end_seq
    for seq, role, content in rows:
        cost = estimate_message(content)
        if kept and used + cost > budget:
            end = kept[-1][0]  # the rest is left for the next run
            break
        kept.append((seq, role, content))
        used += cost
    return kept, end


def summary_store(
    *,
    conversation_id,
    previous_id: int | None,
    start_seq: int,
    end_seq: int,
    content: str,
    tokens_in: int,
    tokens_out: int,
    model: str,
) -> Summary | None:
    """Insert the next summary if ``previous_id`` is still the latest one (None: no summary
    yet); else do nothing and return None. Serialised per conversation by its row lock."""
    try:
        with transaction.atomic():
            locked = Conversation.objects.select_for_update().filter(pk=conversation_id)
            if not locked.values_list("pk", flat=True).first():
                return None  # deleted meanwhile
            latest = _latest(conversation_id)
            if (latest.id if latest else None) != previous_id:
                return None
            expected = latest.end_seq + 1 if latest else 1
            if start_seq != expected:
                return None
            return Summary.objects.create(
                conversation_id=conversation_id,
                start_seq=start_seq,
                end_seq=end_seq,
                content=content,
                tokens_in=tokens_in,
                tokens_out=tokens_out,
                model=model,
            )
    except IntegrityError:
        # Only reachable if the lock was bypassed: the constraints refused an overlap or a gap.
        log.warning("memory.summary_conflict", conversation_id=str(conversation_id))
        return None


def summary_generate(*, conversation_id) -> Summary | None:
    """Summarise the oldest unsummarised messages (all but the newest MEMORY_KEEP_RECENT),
    together with the previous summary, into a new rolling summary.

    Returns the new Summary, or None when nothing was due or another run stored this range.
    Raises ``SummaryFailed`` (nothing stored) for an error, timeout, empty or truncated reply.
    """
    plan = summary_plan(conversation_id=conversation_id)
    if plan is None:
        return None
    messages, end_seq = _range_messages(plan)
    if not messages:
        # Only empty messages (e.g. failed replies) in the range: cover it with the previous
        # text so the chain has no gap and the next run moves on.
        return summary_store(
            conversation_id=conversation_id,
            previous_id=plan.previous.id if plan.previous else None,
            start_seq=plan.start_seq,
            end_seq=end_seq,
            content=plan.previous.content if plan.previous else "",
            tokens_in=0,
            tokens_out=0,
            model=plan.model,
        )
    try:
        result = llm.complete_sync(
            model=plan.model,
            system=SUMMARIZER_PROMPT,
            messages=summarizer_request(previous=plan.previous, messages=messages),
            max_tokens=settings.MEMORY_SUMMARY_MAX_TOKENS,
            total_timeout=float(settings.MEMORY_SUMMARY_SOFT_TIME_LIMIT_SECONDS) * 0.8,
        )
    except llm.LLMError as exc:
        raise SummaryFailed(exc.code, retryable=exc.retryable) from exc
    if result.stop_reason not in _GOOD_STOP_REASONS:
        raise SummaryFailed(f"truncated ({result.stop_reason})")
    text = result.text.strip()
    if not text:
        raise SummaryFailed("empty")
    summary = summary_store(
        conversation_id=conversation_id,
        previous_id=plan.previous.id if plan.previous else None,
        start_seq=plan.start_seq,
        end_seq=end_seq,
        content=text,
        tokens_in=result.usage.total_input_tokens,
        tokens_out=result.usage.output_tokens,
        model=result.model or plan.model,
    )
    log.info(
        "memory.summary_stored" if summary else "memory.summary_discarded",
        conversation_id=str(conversation_id),
        start_seq=plan.start_seq,
        end_seq=end_seq,
        tokens_in=result.usage.total_input_tokens,
        tokens_out=result.usage.output_tokens,
    )
    return summary


def summary_lock_acquire(*, conversation_id, timeout: int) -> str | None:
    """A token when this caller may summarise the conversation now, None if another run is.

    Saves duplicate model calls; correctness does not depend on it (``summary_store`` does).
    """
    token = uuid.uuid4().hex
    try:
        return token if cache.add(_LOCK_KEY.format(id=conversation_id), token, timeout) else None
    except Exception:
        log.warning("memory.lock_unavailable", conversation_id=str(conversation_id))
        return token


def summary_lock_release(*, conversation_id, token: str) -> None:
    key = _LOCK_KEY.format(id=conversation_id)
    try:
        if cache.get(key) == token:
            cache.delete(key)
        cache.delete(_PENDING_KEY.format(id=conversation_id))
    except Exception:
        log.warning("memory.lock_unavailable", conversation_id=str(conversation_id))


def summary_backlog(*, conversation_id) -> int:
    """How many messages come after the latest summary's range (two indexed reads)."""
    last_seq = (
        Conversation.objects.filter(pk=conversation_id).values_list("last_seq", flat=True).first()
    )
    summarised = (
        Summary.objects.filter(conversation_id=conversation_id)
        .order_by("-end_seq")
        .values_list("end_seq", flat=True)
        .first()
    )
    return max((last_seq or 0) - (summarised or 0), 0)


def summary_due(*, unsummarised: int, estimated_tokens: int, budget: int) -> bool:
    """The trigger: enough unsummarised messages, or a context near the budget's share; and
    something older than the MEMORY_KEEP_RECENT newest messages to summarise."""
    if unsummarised <= settings.MEMORY_KEEP_RECENT:
        return False
    if unsummarised >= settings.MEMORY_SUMMARY_TRIGGER_MESSAGES:
        return True
    share = settings.MEMORY_SUMMARY_TRIGGER_BUDGET_SHARE
    return share > 0 and budget > 0 and estimated_tokens >= share * budget


def summary_enqueue(*, conversation_id) -> None:
    """Queue a summarisation run after commit (at most one pending per conversation).

    With a broker this only publishes (queue ``memory``); in the embedded default
    (CELERY_TASK_ALWAYS_EAGER) the task runs in-process. A broker outage is logged, never
    raised: the context falls back to the window until a later turn triggers again.
    """
    from memory.tasks import summarize_conversation

    def publish() -> None:
        try:
            if not cache.add(_PENDING_KEY.format(id=conversation_id), 1, 300):
                return
        except Exception:
            log.warning("memory.lock_unavailable", conversation_id=str(conversation_id))
        try:
            summarize_conversation.apply_async(args=[str(conversation_id)], queue="memory")
        except Exception as exc:
            log.error("memory.enqueue_failed", conversation_id=str(conversation_id), error=str(exc))
            cache.delete(_PENDING_KEY.format(id=conversation_id))

    transaction.on_commit(publish)


def memory_after_turn(
    *,
    conversation_id,
    model: str,
    estimated_input_tokens: int,
    reported_input_tokens: int,
    unsummarised: int | None = None,
) -> None:
    """Called after each stored assistant reply (after commit): calibrates the token estimator
    and enqueues summarisation when the conversation has grown long.

    ``estimated_input_tokens`` is the turn's ``BuiltContext.estimated_tokens`` (raw estimate);
    ``reported_input_tokens`` what the model billed for the same request, input plus cache read
    and cache creation tokens (0 when unknown: no calibration). ``unsummarised``: how many
    messages follow the latest summary as the caller last saw it (a turn does: its reply's seq
    minus ``BuiltContext.summarised_through``). It is an upper bound (a summary may have been
    stored since), so it only saves the two reads when it says "not due"; "due" is checked
    against the stored backlog before anything is enqueued.
    """
    margin_calibrate(
        model=model, estimated_tokens=estimated_input_tokens, reported_tokens=reported_input_tokens
    )
    budget = budget_for(model=model, max_tokens=settings.LLM_DEFAULT_MAX_TOKENS)

    def due(backlog: int) -> bool:
        return summary_due(
            unsummarised=backlog, estimated_tokens=estimated_input_tokens, budget=budget
        )

    if unsummarised is not None and not due(unsummarised):
        return
    if due(summary_backlog(conversation_id=conversation_id)):
        summary_enqueue(conversation_id=conversation_id)
