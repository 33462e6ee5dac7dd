from django.urls import path

from memory.api import ConversationMemoryViewSet

urlpatterns = [
    path(
        "conversations/<uuid:pk>/context",
        ConversationMemoryViewSet.as_view({"get": "context"}),
        name="conversation-context",
    ),
    path(
        "conversations/<uuid:pk>/summaries",
        ConversationMemoryViewSet.as_view({"get": "summaries"}),
        name="conversation-summaries",
    ),
]
