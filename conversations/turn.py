"""The machinery of one chat turn: its database steps (claim, prepare, finish) and
``ChatTurn``, the task that runs it. ``conversations.services`` documents the design and is the
entry point (``chat_turn_start``, ``chat_turn_stop``)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import structlog
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from conversations import metrics
from conversations.models import Conversation, Message
from conversations.selectors import conversations_visible
from conversations.stopping import StopListener
from llmapp.errors import ApiError, Conflict, NotFound, ServiceUnavailable
from llmapp.llm.errors import LLMError
from llmapp.llm.pricing import compute_cost
from llmapp.llm.results import Usage
from llmapp.llm.streaming import open_stream
from memory.context import context_build
from memory.services import memory_after_turn
from prompts.selectors import ActivePrompt, prompt_active_for, prompt_version_ref
from tenants import limits
from tenants.selectors import TenantContext

log = structlog.get_logger(__name__)

# Every DB call of a turn runs in a worker thread and closes its connection afterwards
# (channels' wrapper), so an idle turn waiting on the model holds no connection.
db = database_sync_to_async


def title_from(content: str) -> str:
    """The first ~CHAT_TITLE_MAX_CHARS characters of a message, cut on a word boundary."""
    text = re.sub(r"\s+", " ", content).strip()
    limit = settings.CHAT_TITLE_MAX_CHARS
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rsplit(" ", 1)[0] if " " in text[: limit + 1] else text[:limit]
    return cut.rstrip(" ,.;:-") + "…"


def turn_is_live(conversation: Conversation) -> bool:
    if conversation.active_turn_id is None or conversation.turn_started_at is None:
        return False
    age = timezone.now() - conversation.turn_started_at
    return age < dt.timedelta(seconds=settings.CHAT_TURN_STALE_SECONDS)


# --- the turn's database steps ------------------------------------------------------------------
@dataclass(frozen=True)
class TurnClaim:
    conversation: Conversation
    user_message: Message
    assistant_message: Message


def turn_claim(
    *, tenant: TenantContext, conversation_id, content: str, turn_id: uuid.UUID
) -> TurnClaim:
    """Step 1: claim the conversation for ``turn_id``, store the user message and reserve the
    reply row. Raises NotFound (another tenant's or no conversation) or Conflict."""
    with transaction.atomic():
        conversation = (
            conversations_visible(tenant=tenant)
            .select_for_update()
            .filter(pk=conversation_id)
            .first()
        )
        if conversation is None:
            raise NotFound("Conversation not found.")
        if conversation.archived:
            raise Conflict("This conversation is archived.", code="conversation_archived")
        if turn_is_live(conversation):
            raise Conflict(
                "A reply is already being generated in this conversation.",
                code="turn_in_progress",
            )
        if conversation.active_turn_id is not None:
            interrupted = Message.objects.filter(
                conversation=conversation, status=Message.Status.STREAMING
            ).update(status=Message.Status.FAILED, error_code="interrupted")
            log.warning("chat.turn.stale_claim_taken", interrupted=interrupted)
        now = timezone.now()
        # One INSERT for both rows (bulk_create returns their ids on PostgreSQL and SQLite).
        user_message, assistant_message = Message.objects.bulk_create(
            [
                Message(
                    conversation=conversation,
                    seq=conversation.last_seq + 1,
                    role=Message.Role.USER,
                    content=content,
                    status=Message.Status.COMPLETE,
                ),
                Message(
                    conversation=conversation,
                    seq=conversation.last_seq + 2,
                    role=Message.Role.ASSISTANT,
                    status=Message.Status.STREAMING,
                ),
            ]
        )
        conversation.last_seq += 2
        conversation.active_turn_id = turn_id
        conversation.turn_started_at = now
        update_fields = ["last_seq", "active_turn_id", "turn_started_at", "updated_at"]
        if user_message.seq == 1 and not conversation.title.strip():
            conversation.title = title_from(content)
            update_fields.append("title")
        conversation.save(update_fields=update_fields)
    return TurnClaim(conversation, user_message, assistant_message)


def turn_prepare(*, tenant: TenantContext, conversation: Conversation):
    """Step 2 (reads): the active prompt and the context the model will get."""
    # The conversation's user fills {{user_name}}: usually the caller, already loaded.
    user = tenant.user if conversation.user_id == tenant.user.pk else conversation.user
    prompt = prompt_active_for(
        organization=tenant.organization, name=conversation.prompt_name, user=user
    )
    context = context_build(conversation=conversation, prompt=prompt)
    return prompt, context


@dataclass(frozen=True)
class TurnStart:
    """Steps 1 and 2 as one call (one thread hop, one connection checkout before the model
    call): the claim, then after its commit the reads. A failure of the reads does not undo the
    claim: it is kept in ``prepare_error`` for the turn, which now owns the claim, to handle."""

    claim: TurnClaim
    prompt: ActivePrompt | None = None
    context: Any = None  # memory's BuiltContext
    prepare_error: Exception | None = None


def turn_start(
    *, tenant: TenantContext, conversation_id, content: str, turn_id: uuid.UUID
) -> TurnStart:
    """``turn_claim`` then ``turn_prepare``; raises only what ``turn_claim`` raises."""
    claim = turn_claim(
        tenant=tenant, conversation_id=conversation_id, content=content, turn_id=turn_id
    )
    try:
        prompt, context = turn_prepare(tenant=tenant, conversation=claim.conversation)
    except Exception as exc:  # noqa: BLE001 - re-raised by the turn, where the claim is handled
        return TurnStart(claim, prepare_error=exc)
    return TurnStart(claim, prompt, context)


@dataclass
class TurnOutcome:
    """What the model call produced, whatever its end."""

    status: str
    text: str = ""
    stop_reason: str = ""
    usage: Usage = field(default_factory=Usage)
    usage_reported: bool = False  # upstream reported input tokens (memory calibrates on it)
    cost_usd: Any = 0
    latency_ms: int | None = None
    ttft_ms: int | None = None
    model: str = ""
    prompt_version_id: int | None = None
    request_id: str = ""
    error_code: str = ""
    error_message: str = "The reply failed because of an internal error."
    retryable: bool = True


@dataclass(frozen=True)
class MemoryNote:
    """What memory upkeep needs to know of the turn's context (see ``memory_after_turn``)."""

    estimated_input_tokens: int = 0
    unsummarised: int | None = None  # messages after the latest summary, the reply included


def turn_finish(
    *,
    reply: Message,
    turn_id: uuid.UUID,
    outcome: TurnOutcome,
    prompt: ActivePrompt | None = None,
    memory: MemoryNote = MemoryNote(),
) -> Message | None:
    """Step 3: store the reply once and release the claim, in one transaction; then (after
    commit) let memory calibrate and summarise.

    ``reply`` is the row ``turn_claim`` reserved; it comes back updated in memory (no re-read),
    with ``prompt`` as its prompt version. None when the conversation was deleted meanwhile.
    """
    values = {
        "content": outcome.text,
        "status": outcome.status,
        "stop_reason": outcome.stop_reason or "",
        "input_tokens": outcome.usage.input_tokens,
        "output_tokens": outcome.usage.output_tokens,
        "cache_read_input_tokens": outcome.usage.cache_read_input_tokens,
        "cache_creation_input_tokens": outcome.usage.cache_creation_input_tokens,
        "cost_usd": outcome.cost_usd,
        "latency_ms": outcome.latency_ms,
        "ttft_ms": outcome.ttft_ms,
        "model": outcome.model,
        "prompt_version_id": outcome.prompt_version_id,
        "request_id": (outcome.request_id or "")[:128],
        "error_code": outcome.error_code,
    }
    conversation_id = reply.conversation_id
    with transaction.atomic():
        if not Message.objects.filter(pk=reply.pk).update(**values):
            return None  # deleted with its conversation
        Conversation.objects.filter(pk=conversation_id, active_turn_id=turn_id).update(
            active_turn_id=None, turn_started_at=None, updated_at=timezone.now()
        )
        if outcome.usage_reported:
            transaction.on_commit(lambda: _memory_after_turn(conversation_id, outcome, memory))
    for name, value in values.items():
        setattr(reply, name, value)
    if outcome.prompt_version_id is not None and prompt is not None:
        reply.prompt_version = prompt_version_ref(prompt)
    return reply


def _memory_after_turn(conversation_id, outcome: TurnOutcome, memory: MemoryNote) -> None:
    try:
        memory_after_turn(
            conversation_id=conversation_id,
            model=outcome.model,
            estimated_input_tokens=memory.estimated_input_tokens,
            reported_input_tokens=outcome.usage.total_input_tokens,
            unsummarised=memory.unsummarised,
        )
    except Exception:  # the reply is stored; memory upkeep failing must not fail the turn
        log.exception("chat.memory_after_turn_failed")


# --- the turn itself ----------------------------------------------------------------------------
TERMINAL = frozenset({"rejected", "done", "stopped", "error"})
# Turns run detached from their reader; strong references keep them from being collected.
_running: set[asyncio.Task] = set()


@dataclass
class TurnEvent:
    """``kind``: rejected | start | delta | done | stopped | error; ``data``: the event body."""

    kind: str
    data: dict = field(default_factory=dict)
    error: ApiError | None = None  # rejected: what to answer (status, code, headers)
    message: Message | None = None  # done/stopped/error: the stored reply


def _estimate_tokens(text: str) -> int:
    # Output tokens of a stopped stream are not reported upstream (they come with the final
    # message_delta): estimate them (~4 characters a token) so a stopped reply is still billed.
    return (len(text) + 3) // 4


def _result(task: asyncio.Task) -> bool:
    """A finished stop listener's answer; a broken one counts as "no stop" (logged)."""
    if task.exception() is not None:
        log.warning("chat.turn.stop_listener_failed", error=repr(task.exception()))
        return False
    return task.result()


async def _end_listener(listener: StopListener, task: asyncio.Task) -> None:
    """Finish the listener's wait by releasing it, not cancelling it (see ``release``)."""
    if not task.done():
        try:
            await listener.release()
            await asyncio.wait_for(asyncio.shield(task), timeout=2)
        except Exception:  # noqa: BLE001 - last resort: cancel it
            task.cancel()
    if task.done() and not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as never retrieved


def _db_unavailable() -> ServiceUnavailable:
    return ServiceUnavailable("The database is unavailable.", code="database_unavailable")


class ChatTurn:
    """One turn running in its own task; see ``chat_turn_start``."""

    def __init__(self, *, tenant: TenantContext, conversation_id, content: str, request_id):
        self.turn_id = uuid.uuid4()
        self.tenant = tenant
        self.conversation_id = conversation_id
        self.content = content
        self.request_id = request_id
        self.user_message: Message | None = None
        self.assistant_message: Message | None = None
        self.task: asyncio.Task | None = None
        self._queue: asyncio.Queue[TurnEvent] = asyncio.Queue()
        self._local_stop = asyncio.Event()
        self._detached = False
        self._started = False  # `start` was emitted: failures are reported as `error` events
        self._prompt_label = "none"  # "<prompt>:v<version>" once resolved, for the metrics

    def begin(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name="chat-turn")
        _running.add(self.task)
        self.task.add_done_callback(_running.discard)

    def stop(self) -> None:
        """Stop this turn from its own process (same effect as a published stop)."""
        self._local_stop.set()

    def detach(self) -> None:
        """The reader has gone: keep generating and storing, stop queueing deltas."""
        self._detached = True

    async def next_event(self) -> TurnEvent:
        return await self._queue.get()

    async def events(self):
        while True:
            event = await self._queue.get()
            yield event
            if event.kind in TERMINAL:
                return

    def _emit(self, kind: str, **kwargs) -> None:
        if kind == "delta" and self._detached:
            return
        self._queue.put_nowait(TurnEvent(kind, **kwargs))

    async def _run(self) -> None:
        try:
            start = await db(turn_start)(
                tenant=self.tenant,
                conversation_id=self.conversation_id,
                content=self.content,
                turn_id=self.turn_id,
            )
        except ApiError as exc:
            self._emit("rejected", error=exc)
            return
        except DatabaseError:
            log.error("chat.turn.database_unavailable", step="claim")
            self._emit("rejected", error=_db_unavailable())
            return
        except Exception:
            log.exception("chat.turn.claim_failed")
            self._emit(
                "rejected", error=ApiError("Internal error.", code="internal_error", status=500)
            )
            return
        claim = start.claim
        self.user_message, self.assistant_message = claim.user_message, claim.assistant_message
        structlog.contextvars.bind_contextvars(conversation_id=str(self.conversation_id))
        outcome = TurnOutcome(status=Message.Status.FAILED, error_code="internal_error")
        prompt = None
        memory = MemoryNote()
        rejection: ApiError | None = None
        metrics.IN_FLIGHT.inc()
        try:
            async with StopListener(
                conversation_id=self.conversation_id, turn_id=self.turn_id
            ) as listener:
                if start.prepare_error is not None:
                    raise start.prepare_error
                prompt, context = start.prompt, start.context
                outcome.model = claim.conversation.model or prompt.model
                self._prompt_label = f"{prompt.name}:v{prompt.version or 0}"
                outcome.prompt_version_id = prompt.version_id
                memory = MemoryNote(
                    estimated_input_tokens=context.estimated_tokens,
                    unsummarised=claim.assistant_message.seq - context.summarised_through,
                )
                lease = await limits.turn_admit(
                    tenant=self.tenant,
                    estimated_tokens=context.estimated_tokens + prompt.max_tokens,
                )
                try:
                    self._emit("start", data=self._start_data())
                    self._started = True
                    outcome = await self._generate(listener, outcome, prompt, context)
                finally:
                    # Shielded: the reservation is settled even if this task is cancelled.
                    await asyncio.shield(
                        lease.settle(
                            used_tokens=outcome.usage.total_input_tokens
                            + outcome.usage.output_tokens
                        )
                    )
        except ApiError as exc:  # refused by the limits: nothing reached the model
            outcome.error_code, rejection = exc.code, exc
        except DatabaseError:
            log.error("chat.turn.database_unavailable", step="prepare")
            outcome.error_code, rejection = "database_unavailable", _db_unavailable()
        except Exception:
            log.exception("chat.turn.failed")
            if not self._started:
                rejection = ApiError("Internal error.", code="internal_error", status=500)
        finally:
            metrics.IN_FLIGHT.dec()
            await asyncio.shield(self._finish(outcome, prompt, memory, rejection))

    def _start_data(self) -> dict:
        return {
            "conversation_id": str(self.conversation_id),
            "message_id": self.assistant_message.pk,
            "user_message_id": self.user_message.pk,
            "request_id": self.request_id,
        }

    async def _generate(self, listener: StopListener, outcome, prompt, context) -> TurnOutcome:
        """Stream the reply until it ends, fails, or a stop arrives (which closes upstream)."""
        stream = open_stream(
            model=outcome.model,
            system=context.system,
            messages=context.messages,
            max_tokens=prompt.max_tokens,
            metadata={"user_id": str(self.tenant.organization.pk)},
        )

        async def consume() -> None:
            async with stream:
                async for delta in stream:
                    self._emit("delta", data={"text": delta})

        started = asyncio.get_running_loop().time()
        consumer = asyncio.create_task(consume())
        local_stop = asyncio.create_task(self._local_stop.wait())
        remote_stop = asyncio.create_task(listener.wait())
        try:
            pending = {consumer, local_stop, remote_stop}
            while consumer in pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if local_stop in done or (remote_stop in done and _result(remote_stop)):
                    break
        finally:
            stopped = not consumer.done()
            if stopped:  # a stop, or this task being cancelled: close the upstream now
                consumer.cancel()
                await asyncio.gather(consumer, return_exceptions=True)
            local_stop.cancel()
            await _end_listener(listener, remote_stop)
        base = {
            "model": outcome.model,
            "prompt_version_id": outcome.prompt_version_id,
            "ttft_ms": stream.ttft_ms,
            "request_id": stream.request_id or "",
        }
        if stopped:
            usage = stream.usage_so_far
            usage = Usage(
                input_tokens=usage.input_tokens,
                output_tokens=max(usage.output_tokens, _estimate_tokens(stream.text_so_far)),
                cache_read_input_tokens=usage.cache_read_input_tokens,
                cache_creation_input_tokens=usage.cache_creation_input_tokens,
            )
            return TurnOutcome(
                status=Message.Status.STOPPED,
                text=stream.text_so_far,
                usage=usage,
                usage_reported=usage.input_tokens > 0,
                cost_usd=compute_cost(outcome.model, usage),
                latency_ms=round((asyncio.get_running_loop().time() - started) * 1000),
                **base,
            )
        error = consumer.exception()
        if error is None and stream.result is not None:
            result = stream.result
            return TurnOutcome(
                status=Message.Status.COMPLETE,
                text=result.text,
                stop_reason=result.stop_reason,
                usage=result.usage,
                usage_reported=True,
                cost_usd=result.cost_usd,
                latency_ms=result.latency_ms,
                **{**base, "request_id": result.request_id or ""},
            )
        if not isinstance(error, LLMError):
            log.error("chat.turn.stream_failed", error=type(error).__name__)
            error = LLMError("model_error", "The model failed to complete the reply.", True)
        return TurnOutcome(
            status=Message.Status.FAILED,
            text=error.partial_text,
            usage=error.usage,
            usage_reported=error.usage.input_tokens > 0,
            cost_usd=error.cost_usd,
            latency_ms=round((asyncio.get_running_loop().time() - started) * 1000),
            error_code=error.code,
            error_message=error.message,
            retryable=error.retryable,
            **{**base, "request_id": error.request_id or base["request_id"]},
        )

    async def _finish(self, outcome: TurnOutcome, prompt, memory: MemoryNote, rejection) -> None:
        try:
            message = await db(turn_finish)(
                reply=self.assistant_message,
                turn_id=self.turn_id,
                outcome=outcome,
                prompt=prompt,
                memory=memory,
            )
        except DatabaseError:
            log.error("chat.turn.database_unavailable", step="finish")
            error = _db_unavailable()
            self._emit(
                "rejected" if rejection else "error",
                error=error,
                data={"code": error.code, "message": str(error.detail), "retryable": True},
            )
            return
        log.info(
            "chat.turn.finished",
            status=outcome.status,
            error_code=outcome.error_code or None,
            output_tokens=outcome.usage.output_tokens,
        )
        metrics.record_turn(
            org=self.tenant.organization.slug, prompt_version=self._prompt_label, outcome=outcome
        )
        if rejection is not None:
            self._emit("rejected", error=rejection, message=message)
        elif outcome.status == Message.Status.COMPLETE:
            self._emit("done", data=self._end_data(message, outcome), message=message)
        elif outcome.status == Message.Status.STOPPED:
            self._emit("stopped", data=self._end_data(message, outcome), message=message)
        else:
            data = {
                "code": outcome.error_code,
                "message": outcome.error_message,
                "retryable": outcome.retryable,
                "message_id": self.assistant_message.pk,
            }
            self._emit("error", data=data, message=message)

    def _end_data(self, message, outcome: TurnOutcome) -> dict:
        return {
            "conversation_id": str(self.conversation_id),
            "message_id": self.assistant_message.pk,
            "status": outcome.status,
            "stop_reason": outcome.stop_reason or None,
            "usage": outcome.usage.as_dict(),
            "cost_usd": str(outcome.cost_usd),
            "latency_ms": outcome.latency_ms,
        }
