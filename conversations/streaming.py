"""``/api/v1/conversations/{id}/messages``: GET lists (DRF); POST sends a message (async).

POST is an async Django view, so the model call never holds a worker thread: it authenticates
with the same DRF authenticators and permission as every other API view, then either waits for
the whole reply (201 with both messages) or streams it as Server-Sent Events when the body says
``"stream": true`` or the client sends ``Accept: text/event-stream``. The SSE body is an async
generator (a sync iterator would be buffered whole under ASGI).

SSE events, each with an increasing ``id:``: ``start``, ``delta`` ``{"text"}``, ``done``
(also for a stopped reply, with ``"status": "stopped"``), ``error`` ``{code, message, retryable}``;
``: keep-alive`` comment lines every ``CHAT_SSE_KEEPALIVE_SECONDS`` while nothing else is sent.
"""

import asyncio
import json

import structlog
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.settings import api_settings

from conversations import services
from conversations.api import ConversationMessagesSchema, ConversationViewSet
from conversations.serializers import MessageOut, TurnIn
from llmapp.errors import ApiError, NotFound, api_exception_handler, error_body
from tenants import limits
from tenants.permissions import IsTenantMember

log = structlog.get_logger(__name__)

_message_list = ConversationViewSet.as_view({"get": "messages"})

# How a model failure answers a non-streaming turn (SSE and WebSocket clients get the code).
ERROR_STATUS = {
    **services.MODEL_ERROR_STATUS,
    "database_unavailable": 503,
    "internal_error": 500,
}


def _render(request, response) -> HttpResponse:
    response.accepted_renderer = JSONRenderer()
    response.accepted_media_type = "application/json"
    response.renderer_context = {"request": request}
    return response.render()


def _error(request, exc: Exception) -> HttpResponse:
    return _render(request, api_exception_handler(exc, {"request": request}))


def _authenticate(request) -> tuple[Request, object]:
    """DRF authentication and permission, exactly as an APIView would run them."""
    drf_request = Request(
        request,
        parsers=[JSONParser()],
        authenticators=[auth() for auth in api_settings.DEFAULT_AUTHENTICATION_CLASSES],
    )
    tenant = drf_request.auth  # runs the authenticators; raises AuthenticationFailed
    if not IsTenantMember().has_permission(drf_request, None):
        raise exceptions.NotAuthenticated()
    return drf_request, tenant


@csrf_exempt  # DRF's session authentication enforces CSRF itself, as for every API view
async def conversation_messages(request, pk):
    if request.method == "GET":
        return await sync_to_async(lambda: _render_list(request, pk))()
    if request.method != "POST":
        return _error(request, exceptions.MethodNotAllowed(request.method))
    try:
        drf_request, tenant = await sync_to_async(_authenticate)(request)
        await limits.request_admit(tenant=tenant)
        serializer = TurnIn(data=drf_request.data)  # ParseError for malformed JSON
        serializer.is_valid(raise_exception=True)
    except (exceptions.APIException, DatabaseError) as exc:
        return _error(request, exc)
    data = serializer.validated_data
    wants_stream = data["stream"] or "text/event-stream" in request.headers.get("Accept", "")
    turn = services.chat_turn_start(
        tenant=tenant,
        conversation_id=pk,
        content=data["content"],
        request_id=getattr(request, "request_id", None),
    )
    try:
        first = await turn.next_event()
    except asyncio.CancelledError:
        turn.detach()
        raise
    if first.kind == "rejected":
        return _error(request, first.error)
    if wants_stream:
        response = StreamingHttpResponse(
            _sse_events(turn, first), content_type="text/event-stream; charset=utf-8"
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response
    return await _blocking_turn(request, turn)


# drf-spectacular documents DRF views only: let it see this route's methods.
conversation_messages.cls = ConversationMessagesSchema
conversation_messages.initkwargs = {}


def _render_list(request, pk):
    response = _message_list(request, pk=pk)
    return response.render() if hasattr(response, "render") else response


async def _blocking_turn(request, turn) -> HttpResponse:
    """Wait for the whole reply: 201 with both messages, or the error body of the failure."""
    try:
        async for event in turn.events():
            last = event
    finally:
        turn.detach()  # a client gone mid-wait leaves the turn to finish and store the reply
    if last.kind in ("done", "stopped") and last.message is None:
        # Stored, then deleted with its conversation before the answer (the admin can do that).
        return _error(request, NotFound("The conversation was deleted during the reply."))
    user_message = MessageOut(turn.user_message).data
    if last.kind in ("done", "stopped"):
        body = {"user_message": user_message, "assistant_message": MessageOut(last.message).data}
        return _json(body, status=201)
    if last.kind == "rejected":
        return _error(request, last.error)
    code = last.data["code"]
    body = error_body(
        code,
        last.data["message"],
        getattr(request, "request_id", None),
        retryable=last.data["retryable"],
        user_message=user_message,
        assistant_message=MessageOut(last.message).data if last.message else None,
    )
    return _json(body, status=ERROR_STATUS.get(code, 502))


def _json(body: dict, *, status: int) -> HttpResponse:
    # DRF's renderer, so UUIDs, decimals and datetimes look as on every other endpoint.
    return HttpResponse(JSONRenderer().render(body), status=status, content_type="application/json")


def _frame(event_id: int, name: str, data: dict) -> str:
    return f"id: {event_id}\nevent: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def _sse_events(turn, first):
    """The SSE body. Closing it early (client gone) detaches the turn, which carries on."""
    keepalive = settings.CHAT_SSE_KEEPALIVE_SECONDS
    event_id = 1
    try:
        yield _frame(event_id, "start", first.data)
        while True:
            try:
                event = await asyncio.wait_for(turn.next_event(), timeout=keepalive)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            event_id += 1
            if event.kind == "delta":
                yield _frame(event_id, "delta", event.data)
            elif event.kind in ("done", "stopped"):
                yield _frame(event_id, "done", event.data)
                return
            else:
                yield _frame(event_id, "error", _sse_error(event))
                return
    finally:
        turn.detach()


def _sse_error(event) -> dict:
    if event.error is not None and event.kind == "rejected":
        error: ApiError = event.error
        return {"code": error.code, "message": str(error.detail), "retryable": True}
    return event.data
