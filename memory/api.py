"""REST API of memory: the context a conversation's next turn would send, and its summaries.

Both hang off ``/api/v1/conversations/{id}/``; scoping is the base viewset's (another
organisation's conversation is a 404).
"""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from conversations.selectors import conversations_visible
from memory import selectors
from memory.serializers import ContextOut, SummaryOut
from tenants.viewsets import TenantScopedViewSet


class ConversationMemoryViewSet(TenantScopedViewSet):
    def get_queryset(self):
        # The conversation rules (own, or the organisation's for its admins) live in one place.
        return conversations_visible(tenant=self.tenant)

    @extend_schema(responses=ContextOut)
    def context(self, request, pk=None):
        """Exactly what the next turn would send: prompt version, system blocks, summary,
        window messages, estimated tokens per part and in total, and the budget."""
        data = selectors.context_preview(tenant=self.tenant, conversation=self.get_object())
        return Response(ContextOut(data).data)

    @extend_schema(responses=SummaryOut(many=True))
    def summaries(self, request, pk=None):
        """The conversation's summaries, oldest range first (paginated)."""
        queryset = selectors.summary_list(conversation=self.get_object())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(SummaryOut(page, many=True).data)
