"""The chat page served by the app itself: login, logout and a single-page chat (``GET /``).

Plain Django templates plus build-free JavaScript and CSS in ``web/static/web/``: no framework,
no CDN. The page talks to the same REST API and WebSocket as every other client, authenticated
by the Django session cookie (``tenants.authentication``).
"""
