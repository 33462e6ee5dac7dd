"""Writes for conversations, and the chat turn used by REST, SSE and WebSocket alike.

Entry points: ``chat_turn_start`` and ``chat_turn_stop``; the machinery is in
``conversations.turn``.

One turn (``chat_turn_start``), in a background task of its own:

1. Claim the conversation and store the user message: one transaction locks the conversation
   row, refuses an archived conversation (409 ``conversation_archived``) or one with a turn in
   flight (409 ``turn_in_progress``), hands out two sequence numbers from ``last_seq``, and
   inserts the user message (``complete``) and an empty assistant row (``streaming``) that
   reserves the reply's place and id. The user message is never lost after this point.
2. Resolve the active prompt and build the context (memory): reads, in the same thread hop as
   the claim but after its commit (``turn_start``), so a failure here is a failure of a claimed
   turn. Admit the turn against the tenant's limits, stream the reply from ``llmapp.llm``
   forwarding every delta.
3. Store the assistant reply once, at the end (one UPDATE of the reserved row, no per-token
   writes): ``complete``; ``failed`` with the partial text and ``error_code``; or ``stopped``
   with the partial text and its tokens still counted. The same transaction releases the claim;
   ``memory_after_turn`` runs after commit. No database connection is held across the model call.

Concurrency: two turns at once in one conversation are refused, not serialised: the second gets
409 ``turn_in_progress`` (``active_turn_id`` set under ``SELECT ... FOR UPDATE``). A claim older
than ``CHAT_TURN_STALE_SECONDS`` was left by a crashed process: it is taken over, and the reply
row it left ``streaming`` becomes ``failed`` with ``error_code="interrupted"``.

Client disconnect without an explicit stop: the generation continues to the end in its task
(the task is not tied to the request or socket), so the reply is stored complete and nothing
paid for is lost; the client reads it later from ``GET .../messages``. Only a stop
(``POST .../stop``, ``chat.stop``) ends a generation early; it reaches the turn from any process
through Redis pub/sub (``conversations.stopping``) and closes the upstream stream.
``POST .../stop`` answers 202 when a turn was signalled, 409 ``no_turn_in_progress`` otherwise.
A stopped reply's output tokens are the upstream count or, when upstream has not reported them
yet (they come with the final event), an estimate of ~4 characters a token, so it is billed.

Why the assistant row is inserted empty at the claim and filled once at the end: its id is in
the ``start`` event (DESIGN), its sequence number is taken with the user's, and a crashed turn
leaves a visible ``streaming`` row instead of nothing (the context builder skips empty replies).

Errors: a refusal before the model is called (404, 409, the limits' 429, 503 database) is a
plain JSON error on every interface, with the user message stored only when the refusal came
after the claim (limits). A model failure of a non-streaming turn answers ``model_overloaded``
503, ``model_rate_limited`` 429, ``model_timeout`` 504, ``model_error``/``model_bad_request``
502, with ``retryable`` and both stored messages in the error body; SSE and WebSocket clients
get an ``error``/``chat.error`` event with ``code``, ``message`` and ``retryable``.

Conversations: ``DELETE`` really deletes (409 while a turn runs); ``PATCH {"archived": true}``
archives, and an archived conversation refuses new messages (409 ``conversation_archived``).
The title, when none was given, is the first user message cut on a word boundary.
"""

from __future__ import annotations

import uuid

import structlog
from channels.db import database_sync_to_async
from django.conf import settings

from conversations.models import Conversation
from conversations.selectors import conversations_visible
from conversations.stopping import stop_publish
from conversations.turn import ChatTurn, turn_is_live
from llmapp.errors import Conflict, NotFound
from tenants.selectors import TenantContext

log = structlog.get_logger(__name__)

# HTTP status of a model failure in a non-streaming turn (the SSE/WS clients get the code).
MODEL_ERROR_STATUS = {
    "model_overloaded": 503,
    "model_rate_limited": 429,
    "model_timeout": 504,
    "model_error": 502,
    "model_bad_request": 502,
}


# --- conversations ------------------------------------------------------------------------------
def conversation_create(
    *, tenant: TenantContext, title: str = "", prompt_name: str | None = None, model: str = ""
) -> Conversation:
    """A new conversation of the caller's organisation and user."""
    conversation = Conversation(
        organization=tenant.organization, user=tenant.user, title=title.strip(), model=model
    )
    if prompt_name:
        conversation.prompt_name = prompt_name
    conversation.save()
    return conversation


def conversation_update(
    *,
    conversation: Conversation,
    title: str | None = None,
    prompt_name: str | None = None,
    model: str | None = None,
    archived: bool | None = None,
) -> Conversation:
    """Change the given fields only; ``archived=True`` makes it read-only for new turns."""
    changes = {
        "title": title.strip() if title is not None else None,
        "prompt_name": prompt_name,
        "model": model,
        "archived": archived,
    }
    fields = [name for name, value in changes.items() if value is not None]
    for name in fields:
        setattr(conversation, name, changes[name])
    if fields:
        conversation.save(update_fields=[*fields, "updated_at"])
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    """Delete it with its messages (archiving is ``PATCH {"archived": true}``).

    Refused while a turn is in flight: its reply would have nowhere to go.
    """
    if turn_is_live(conversation):
        raise Conflict("A reply is being generated; stop it first.", code="turn_in_progress")
    conversation.delete()


def turn_active_id(*, tenant: TenantContext, conversation_id) -> uuid.UUID | None:
    """The turn in flight in the caller's conversation (NotFound for another tenant's)."""
    conversation = (
        conversations_visible(tenant=tenant)
        .filter(pk=conversation_id)
        .only("active_turn_id", "turn_started_at")
        .first()
    )
    if conversation is None:
        raise NotFound("Conversation not found.")
    return conversation.active_turn_id if turn_is_live(conversation) else None


async def chat_turn_stop(*, tenant: TenantContext, conversation_id) -> uuid.UUID | None:
    """Stop the generation in flight in the conversation, in whichever process it runs.

    Returns the stopped turn's id, or None when nothing was running.
    """
    turn_id = await database_sync_to_async(turn_active_id)(
        tenant=tenant, conversation_id=conversation_id
    )
    if turn_id is not None:
        await stop_publish(
            conversation_id=conversation_id,
            turn_id=turn_id,
            ttl_seconds=settings.CHAT_TURN_STALE_SECONDS,
        )
        log.info("chat.turn.stop_requested", conversation_id=str(conversation_id))
    return turn_id


def chat_turn_start(
    *, tenant: TenantContext, conversation_id, content: str, request_id: str | None = None
) -> ChatTurn:
    """Start one chat turn in a background task and return its handle.

    Read ``await turn.next_event()`` / ``async for event in turn.events()``: first either
    ``rejected`` (an ``ApiError`` to answer with; nothing reached the model) or ``start``, then
    ``delta`` events, then exactly one of ``done``, ``stopped`` or ``error``. The task does not
    depend on its reader: a reader that goes away (client disconnect) leaves it running to the
    end (call ``detach()``).
    """
    turn = ChatTurn(
        tenant=tenant, conversation_id=conversation_id, content=content, request_id=request_id
    )
    turn.begin()
    return turn
