"""Authentication for DRF (API keys, session) and Channels (API key header or session cookie).

Each binds the tenant to the request (``request.tenant``, ``request.auth``) and to the log
context (``org``, ``user``), so later code and every later log line know who is calling.
"""

import structlog
from channels.auth import AuthMiddleware
from channels.db import database_sync_to_async
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from rest_framework import authentication, exceptions

from tenants.selectors import TenantContext, tenant_from_api_key, tenant_from_user
from tenants.services import api_key_touch

SESSION_ORG_KEY = "org_id"


def bind_tenant(request, tenant: TenantContext) -> None:
    request.tenant = tenant
    structlog.contextvars.bind_contextvars(org=tenant.organization.slug, user=tenant.user.username)


def bearer_token(header_value: str | None) -> str | None:
    """The token of ``Bearer <token>``; '' when the header is there but malformed."""
    if header_value is None:
        return None
    scheme, _, token = header_value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or " " in token.strip():
        return ""
    return token.strip()


def authenticate_api_key(raw_key: str) -> TenantContext:
    tenant = tenant_from_api_key(raw_key)
    if tenant is None:
        raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
    api_key_touch(
        api_key=tenant.api_key, resolution_seconds=settings.API_KEY_LAST_USED_RESOLUTION_SECONDS
    )
    return tenant


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <key>``. No header: not this scheme; a bad header: 401."""

    keyword = "Bearer"

    def authenticate(self, request):
        token = bearer_token(request.headers.get("Authorization"))
        if token is None:
            return None
        if not token:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header; expected 'Bearer <api key>'."
            )
        tenant = authenticate_api_key(token)
        bind_tenant(request._request, tenant)
        return tenant.user, tenant

    def authenticate_header(self, request) -> str:
        return self.keyword


class TenantSessionAuthentication(authentication.SessionAuthentication):
    """The Django session of the app's own pages (CSRF enforced), mapped to a membership."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        tenant = tenant_from_user(result[0], org_id=request.session.get(SESSION_ORG_KEY))
        if tenant is None:
            raise exceptions.AuthenticationFailed("This account belongs to no organisation.")
        bind_tenant(request._request, tenant)
        return tenant.user, tenant


class TenantAuthMiddleware:
    """Channels middleware: ``scope["tenant"]`` from an API key header, else the session.

    A connection with neither (or a bad key) gets ``scope["tenant"] = None``; the consumer
    closes it with an authentication error.
    """

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        scope = dict(scope)
        headers = dict(scope.get("headers") or [])
        raw = headers.get(b"authorization")
        tenant = None
        if raw is not None:
            token = bearer_token(raw.decode("latin-1"))
            if token:
                tenant = await database_sync_to_async(_tenant_for_key)(token)
        else:
            user = scope.get("user")
            session = scope.get("session")
            org_id = session.get(SESSION_ORG_KEY) if session is not None else None
            tenant = await database_sync_to_async(tenant_from_user)(user, org_id=org_id)
        scope["tenant"] = tenant
        if tenant is not None:
            scope["user"] = tenant.user
        return await self.inner(scope, receive, send)


def _tenant_for_key(token: str) -> TenantContext | None:
    try:
        return authenticate_api_key(token)
    except exceptions.AuthenticationFailed:
        return None


def TenantAuthMiddlewareStack(inner):  # noqa: N802 - named like Channels' AuthMiddlewareStack
    return CookieMiddleware(SessionMiddleware(AuthMiddleware(TenantAuthMiddleware(inner))))
