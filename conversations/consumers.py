"""The chat WebSocket, ``ws/chat/``."""

import asyncio
import contextlib
import json
import math
import uuid

import structlog
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.db import DatabaseError
from rest_framework import exceptions, serializers

from conversations import services
from conversations.serializers import StrictCharField, StrictInputSerializer, validate_content
from llmapp.errors import ApiError
from tenants import limits

log = structlog.get_logger(__name__)

CLOSE_UNAUTHENTICATED = 4401


class ChatSendIn(StrictInputSerializer):
    type = serializers.CharField()
    conversation_id = serializers.UUIDField()
    content = StrictCharField(trim_whitespace=False, allow_blank=True)

    def validate_content(self, value: str) -> str:
        return validate_content(value)


class ChatStopIn(StrictInputSerializer):
    type = serializers.CharField()
    conversation_id = serializers.UUIDField(required=False)


class ChatConsumer(AsyncJsonWebsocketConsumer):
    """Chat over one socket, several conversations at once.

    Authenticated by ``scope["tenant"]`` (API key header or session; closed with 4401 without
    one). Client messages: ``{"type": "chat.send", "conversation_id", "content"}`` and
    ``{"type": "chat.stop", "conversation_id"?}`` (without an id: every turn this socket
    started). Server messages, each naming its ``conversation_id``: ``chat.start``,
    ``chat.delta`` ``{seq, text}``, ``chat.done``, ``chat.stopped``, ``chat.error``
    ``{code, message, retryable}`` (+ ``retry_after`` when rate limited).

    Each turn is read by a pump task that sends the first delta at once and coalesces the
    following ones for ``CHAT_WS_BATCH_MS`` or ``CHAT_WS_BATCH_CHARS``, so a fast model does
    not cost one frame per token. A bad message
    gets ``chat.error`` and the socket stays open. On disconnect the turns carry on and store
    their replies (see ``conversations.services``).
    """

    # No channel-layer inbox per socket: nothing is ever sent to a socket through the layer
    # (stops travel by Redis pub/sub, see conversations.stopping), so an alias that is not configured
    # makes Channels skip it, saving one blocking Redis pop per open socket.
    channel_layer_alias = "chat-socket-has-no-inbox"

    async def connect(self):
        self.tenant = self.scope.get("tenant")
        self.turns: dict[str, services.ChatTurn] = {}
        self.pumps: set[asyncio.Task] = set()
        if self.tenant is None:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        structlog.contextvars.bind_contextvars(
            ws_session=uuid.uuid4().hex[:12],
            org=self.tenant.organization.slug,
            user=self.tenant.user.username,
        )
        await self.accept()

    async def disconnect(self, code):
        for turn in self.turns.values():
            turn.detach()
        for pump in list(self.pumps):
            pump.cancel()

    async def receive(self, text_data=None, bytes_data=None):
        try:
            content = json.loads(text_data if text_data is not None else bytes_data)
        except (TypeError, ValueError):
            await self._error("malformed_json", "The message is not valid JSON.")
            return
        await self.receive_json(content)

    async def receive_json(self, content, **kwargs):
        kind = content.get("type") if isinstance(content, dict) else None
        try:
            if kind == "chat.send":
                await self._chat_send(content)
            elif kind == "chat.stop":
                await self._chat_stop(content)
            else:
                await self._error("unknown_type", "type must be chat.send or chat.stop.")
        except ApiError as exc:
            retry_after = _retry_after(exc)
            await self._error(
                exc.code,
                str(exc.detail),
                conversation_id=content.get("conversation_id"),
                retryable=exc.status_code in (429, 503),
                **({"retry_after": retry_after} if retry_after is not None else {}),
            )
        except exceptions.ValidationError as exc:
            await self._error("invalid_request", _first_error(exc.detail))
        except DatabaseError:
            await self._error(
                "database_unavailable", "The database is unavailable.", retryable=True
            )

    async def _chat_send(self, content: dict) -> None:
        serializer = ChatSendIn(data=content)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        await limits.request_admit(tenant=self.tenant)
        conversation_id = str(data["conversation_id"])
        turn = services.chat_turn_start(
            tenant=self.tenant, conversation_id=conversation_id, content=data["content"]
        )
        pump = asyncio.create_task(self._pump(turn, conversation_id))
        self.pumps.add(pump)
        pump.add_done_callback(self.pumps.discard)

    async def _chat_stop(self, content: dict) -> None:
        serializer = ChatStopIn(data=content)
        serializer.is_valid(raise_exception=True)
        conversation_id = serializer.validated_data.get("conversation_id")
        if conversation_id is None:
            for turn in self.turns.values():
                turn.stop()
            return
        turn_id = await services.chat_turn_stop(tenant=self.tenant, conversation_id=conversation_id)
        if turn_id is None:
            await self._error(
                "no_turn_in_progress",
                "No reply is being generated.",
                conversation_id=str(conversation_id),
            )

    async def _pump(self, turn, conversation_id: str) -> None:
        """Forward one turn's events to the socket, coalescing deltas."""
        loop = asyncio.get_running_loop()
        batch_seconds = settings.CHAT_WS_BATCH_MS / 1000
        pending: list[str] = []
        pending_chars = 0
        flush_at = 0.0
        seq = 0

        async def flush() -> None:
            nonlocal pending, pending_chars, seq
            if pending:
                seq += 1
                text, pending, pending_chars = "".join(pending), [], 0
                await self.send_json(
                    {"type": "chat.delta", "conversation_id": conversation_id, "seq": seq,
                     "text": text, "message_id": message_id}
                )  # fmt: skip

        message_id = None
        try:
            while True:
                timeout = max(0.0, flush_at - loop.time()) if pending else None
                try:
                    event = await asyncio.wait_for(turn.next_event(), timeout)
                except TimeoutError:
                    await flush()
                    continue
                if event.kind == "delta":
                    if not pending:
                        flush_at = loop.time() + batch_seconds
                    pending.append(event.data["text"])
                    pending_chars += len(event.data["text"])
                    # The first delta goes out at once (time to first token is what a person
                    # feels); later ones are coalesced.
                    if seq == 0 or pending_chars >= settings.CHAT_WS_BATCH_CHARS:
                        await flush()
                    continue
                await flush()
                if event.kind == "start":
                    message_id = event.data["message_id"]
                    self.turns[conversation_id] = turn
                    await self.send_json({"type": "chat.start", **event.data})
                    continue
                await self._send_end(event, conversation_id)
                return
        finally:
            turn.detach()
            if self.turns.get(conversation_id) is turn:
                del self.turns[conversation_id]

    async def _send_end(self, event, conversation_id: str) -> None:
        if event.kind in ("done", "stopped"):
            await self.send_json({"type": f"chat.{event.kind}", **event.data})
        elif event.kind == "rejected":
            error = event.error
            retry_after = _retry_after(error)
            await self._error(
                error.code,
                str(error.detail),
                conversation_id=conversation_id,
                retryable=error.status_code in (429, 503),
                **({"retry_after": retry_after} if retry_after is not None else {}),
            )
        else:
            await self._error(**{**event.data, "conversation_id": conversation_id})

    async def _error(self, code: str, message: str, *, retryable: bool = False, **extra) -> None:
        with contextlib.suppress(Exception):  # the socket may be closing
            await self.send_json(
                {"type": "chat.error", "code": code, "message": message, "retryable": retryable}
                | {k: v for k, v in extra.items() if v is not None}
            )


def _retry_after(error: ApiError) -> int | None:
    value = error.extra.get("retry_after") or error.headers.get("Retry-After")
    try:
        return math.ceil(float(value)) if value is not None else None
    except ValueError:
        return None


def _first_error(detail) -> str:
    if isinstance(detail, dict):
        field, value = next(iter(detail.items()))
        return f"{field}: {_first_error(value)}"
    if isinstance(detail, list) and detail:
        return _first_error(detail[0])
    return str(detail)
