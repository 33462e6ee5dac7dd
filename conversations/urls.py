from django.urls import path
from rest_framework.routers import SimpleRouter

from conversations.api import ConversationViewSet, UsageView
from conversations.streaming import conversation_messages

router = SimpleRouter(trailing_slash=False)
router.register("conversations", ConversationViewSet, basename="conversation")

urlpatterns = [
    path(
        "conversations/<uuid:pk>/messages",
        conversation_messages,
        name="conversation-messages",
    ),
    path("usage", UsageView.as_view(), name="usage"),
    *router.urls,
]
