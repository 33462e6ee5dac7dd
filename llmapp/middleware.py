"""Request id and access log middleware. Both run natively in sync and async stacks, so an
async view (the SSE stream) pays no thread hop for them."""

import re
import time
import uuid

import structlog
from asgiref.sync import iscoroutinefunction, markcoroutinefunction

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

access_log = structlog.get_logger("llmapp.access")


def request_id_from(value: str | None) -> str:
    """The caller's id when it is 1-128 chars of ``[A-Za-z0-9._-]``, else a new UUID4."""
    if value and _VALID_REQUEST_ID.match(value):
        return value
    return str(uuid.uuid4())


class _HybridMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self._acall(request)
        self.before(request)
        return self.after(request, self.get_response(request))

    async def _acall(self, request):
        self.before(request)
        return self.after(request, await self.get_response(request))

    def before(self, request) -> None:
        pass

    def after(self, request, response):
        return response


class RequestIdMiddleware(_HybridMiddleware):
    """Takes a valid ``X-Request-ID`` or makes one, binds it to every log line of the request and
    returns it on every response, errors included."""

    def before(self, request) -> None:
        request.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request.request_id)

    def after(self, request, response):
        response[REQUEST_ID_HEADER] = request.request_id
        return response


class AccessLogMiddleware(_HybridMiddleware):
    """One line per request: method, path, route pattern, status, duration, user agent, and the
    organisation and user that authentication bound (never a key or a message body)."""

    def before(self, request) -> None:
        request._access_started = time.perf_counter()

    def after(self, request, response):
        match = getattr(request, "resolver_match", None)
        tenant = getattr(request, "tenant", None)
        access_log.info(
            "http.request",
            method=request.method,
            path=request.path,
            route=match.route if match else None,
            status=response.status_code,
            duration_ms=round((time.perf_counter() - request._access_started) * 1000, 2),
            userAgent=request.headers.get("User-Agent", ""),
            org=tenant.organization.slug if tenant else None,
            user=tenant.user.username if tenant else None,
        )
        return response
