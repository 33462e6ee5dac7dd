"""WebSocket routes."""

from django.urls import path

from conversations.consumers import ChatConsumer

websocket_urlpatterns: list = [
    path("ws/chat/", ChatConsumer.as_asgi()),
]
