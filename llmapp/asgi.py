"""ASGI entry point: Django for HTTP, Channels for WebSocket (``ws/chat/``)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "llmapp.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import OriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from conversations.routing import websocket_urlpatterns  # noqa: E402
from tenants.authentication import TenantAuthMiddlewareStack  # noqa: E402


class BrowserOriginValidator(OriginValidator):
    """Browsers always send ``Origin``: theirs must be one of ALLOWED_HOSTS (a cookie-borne
    session cannot be used cross-site). Clients without ``Origin`` are not browsers; they carry
    no ambient cookie and must authenticate with an API key header."""

    def valid_origin(self, parsed_origin):
        return parsed_origin is None or self.validate_origin(parsed_origin)


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": BrowserOriginValidator(
            TenantAuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
            settings.ALLOWED_HOSTS,
        ),
    }
)
