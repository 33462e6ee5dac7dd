"""REST API of conversations (DRF, tenant-scoped) and the usage report.

Sending a message (``POST .../messages``) lives in ``conversations.streaming``: it is an async
view, so neither a streamed nor a blocking turn ties up a worker thread for the model call.
"""

from asgiref.sync import async_to_sync
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations import selectors, services
from conversations.models import Conversation
from conversations.serializers import (
    ConversationCreateIn,
    ConversationOut,
    ConversationUpdateIn,
    MessageOut,
    TurnIn,
    TurnOut,
    UsageQueryIn,
    UsageReportOut,
)
from llmapp.errors import Conflict
from tenants.viewsets import TenantScopedViewSet

UUID_REGEX = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


class ConversationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    TenantScopedViewSet,
):
    """Conversations. A member sees and uses only their own; an organisation admin also the
    rest of the organisation's (the list shows the caller's own unless ``?all=true``).
    ``DELETE`` deletes; ``PATCH {"archived": true}`` archives (an archived conversation takes
    no new message: 409 ``conversation_archived``)."""

    queryset = Conversation.objects.select_related("user")
    serializer_class = ConversationOut
    lookup_value_regex = UUID_REGEX
    pagination_class = Pagination

    def get_queryset(self):
        if self.action == "list":
            everyone = self.request.query_params.get("all", "").lower() in {"1", "true", "yes"}
            return selectors.conversation_list(tenant=self.tenant, everyone=everyone)
        return selectors.conversations_visible(tenant=self.tenant).select_related("user")

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "all", bool, description="Admins: the whole organisation's conversations."
            )
        ]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=ConversationCreateIn, responses={201: ConversationOut})
    def create(self, request):
        data = self._validated(ConversationCreateIn, request.data)
        conversation = services.conversation_create(
            tenant=self.tenant,
            title=data.get("title", ""),
            prompt_name=data.get("prompt"),
            model=data.get("model", ""),
        )
        return Response(ConversationOut(conversation).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ConversationUpdateIn, responses=ConversationOut)
    def partial_update(self, request, pk=None):
        conversation = self.get_object()  # a 404 before any word on the body
        data = self._validated(ConversationUpdateIn, request.data)
        conversation = services.conversation_update(
            conversation=conversation,
            title=data.get("title"),
            prompt_name=data.get("prompt"),
            model=data.get("model"),
            archived=data.get("archived"),
        )
        return Response(ConversationOut(conversation).data)

    def destroy(self, request, pk=None):
        services.conversation_delete(conversation=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=MessageOut(many=True))
    def messages(self, request, pk=None):
        """Its messages, oldest first, paginated (routed by ``conversations.streaming``)."""
        queryset = selectors.message_list(conversation=self.get_object())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(MessageOut(page, many=True).data)

    @extend_schema(request=None, responses={202: dict})
    @action(detail=True, methods=["post"])
    def stop(self, request, pk=None):
        """Stop the generation in flight, in whichever process it runs; the partial reply is
        kept as ``stopped``. 202 when a turn was signalled, 409 ``no_turn_in_progress``."""
        conversation = self.get_object()
        turn_id = async_to_sync(services.chat_turn_stop)(
            tenant=self.tenant, conversation_id=conversation.pk
        )
        if turn_id is None:
            raise Conflict("No reply is being generated.", code="no_turn_in_progress")
        return Response(
            {"conversation_id": str(conversation.pk), "turn_id": str(turn_id), "stopping": True},
            status=status.HTTP_202_ACCEPTED,
        )

    @staticmethod
    def _validated(serializer_class, data) -> dict:
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class UsageView(APIView):
    """The organisation's tokens and cost, summed over its assistant messages."""

    @extend_schema(
        parameters=[
            OpenApiParameter("group_by", enum=["day", "model", "user", "prompt_version"]),
            OpenApiParameter("from", type=str, description="YYYY-MM-DD, inclusive"),
            OpenApiParameter("to", type=str, description="YYYY-MM-DD, inclusive"),
        ],
        responses=UsageReportOut,
    )
    def get(self, request):
        query = UsageQueryIn(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        rows = selectors.usage_summary(
            tenant=request.auth,
            group_by=params["group_by"],
            date_from=params.get("from"),
            date_to=params.get("to"),
        )
        totals = {
            name: sum((row[name] for row in rows), 0)
            for name in (
                "messages",
                "input_tokens",
                "output_tokens",
                "cache_read_input_tokens",
                "cache_creation_input_tokens",
                "cost_usd",
            )
        }
        report = {
            "group_by": params["group_by"],
            "from": params.get("from"),
            "to": params.get("to"),
            "results": rows,
            "total": totals,
        }
        return Response(UsageReportOut(report).data)


class MessagePageOut(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = MessageOut(many=True)


class ConversationMessagesSchema(APIView):
    # Documentation only: the route is served by the async view
    # conversations.streaming.conversation_messages (GET delegates to
    # ConversationViewSet.messages); this class lets drf-spectacular see both methods.

    @extend_schema(
        responses=MessagePageOut,
        parameters=[
            OpenApiParameter("page", int, description="Page number (1 = oldest messages)."),
            OpenApiParameter("page_size", int, description="Messages per page (at most 500)."),
        ],
        description="The conversation's messages, oldest first, paginated.",
        operation_id="conversation_messages_list",
    )
    def get(self, request, pk):  # pragma: no cover - documentation only
        raise NotImplementedError

    @extend_schema(
        request=TurnIn,
        responses={
            (201, "application/json"): TurnOut,
            (200, "text/event-stream"): {
                "type": "object",
                "description": "One Server-Sent Event (with `stream: true` or "
                "`Accept: text/event-stream`): `start`, `delta` `{text}`, `done`, `error` "
                "`{code, message, retryable}`; `data` is JSON.",
                "properties": {
                    "id": {"type": "string"},
                    "event": {"type": "string", "enum": ["start", "delta", "done", "error"]},
                    "data": {"type": "string"},
                },
            },
        },
        description="Send a message and get the reply: whole (201 with both messages; a model "
        "failure answers 502/503/429/504 with `code`, `retryable` and both stored messages), "
        "or streamed as Server-Sent Events.",
        operation_id="conversation_messages_send",
    )
    def post(self, request, pk):  # pragma: no cover - documentation only
        raise NotImplementedError
