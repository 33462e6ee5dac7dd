"""WebSocket routes (the chat consumer is added by the chat feature)."""

websocket_urlpatterns: list = []
