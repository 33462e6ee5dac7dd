"""The project's middleware: request id and access log (both native in sync and async stacks),
and Django's and django-prometheus's middleware adapted to run their hooks on the event loop.

Django's ``MiddlewareMixin`` serves an async request by running every ``process_request`` and
``process_response`` in a worker thread (``sync_to_async``): with the stack in settings that was
about 20 thread hops per request, each a wake-up of another thread and a contended GIL under
load. The hooks of the middleware adapted here only read the request, set response headers,
count metrics or attach lazy objects, so ``InLoopHooksMixin`` runs them in place; the few cases
that can reach the database or the cache (a session to save, messages to store, a form's CSRF
token to check) still go to a thread, exactly as before. Sync stacks (the test client, WSGI) are
unchanged.
"""

import re
import time
import uuid

import structlog
from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware as _Authentication
from django.contrib.messages.middleware import MessageMiddleware as _Message
from django.contrib.sessions.middleware import SessionMiddleware as _Session
from django.middleware.clickjacking import XFrameOptionsMiddleware as _XFrameOptions
from django.middleware.common import CommonMiddleware as _Common
from django.middleware.csrf import CsrfViewMiddleware as _CsrfView
from django.middleware.security import SecurityMiddleware as _Security
from django_prometheus.middleware import PrometheusAfterMiddleware as _PrometheusAfter
from django_prometheus.middleware import PrometheusBeforeMiddleware as _PrometheusBefore

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


# --- Django's middleware, hooks on the event loop --------------------------------------------------
_in_thread = sync_to_async  # thread_sensitive=True by default: the request's own thread


class InLoopHooksMixin:
    """Runs a ``MiddlewareMixin`` subclass's hooks on the event loop in an async stack.

    For middleware whose hooks do no I/O; ``needs_thread_for_response`` (and
    ``needs_thread_for_view``) name the requests for which they might, and those hooks run in a
    thread as Django would run them.
    """

    def __init__(self, get_response):
        super().__init__(get_response)
        if self.async_mode and hasattr(self, "process_view"):
            # Django adapts process_view when it loads the stack: a coroutine function is
            # awaited as is, a plain one would be wrapped in a thread hop.
            self._process_view_sync = self.process_view
            self.process_view = self._process_view_in_loop

    def __call__(self, request):
        if self.async_mode:
            return self._call_in_loop(request)
        return super().__call__(request)

    async def _call_in_loop(self, request):
        response = None
        if hasattr(self, "process_request"):
            if self.needs_thread_for_request(request):
                response = await _in_thread(self.process_request)(request)
            else:
                response = self.process_request(request)
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            if self.needs_thread_for_response(request, response):
                response = await _in_thread(self.process_response)(request, response)
            else:
                response = self.process_response(request, response)
        return response

    async def _process_view_in_loop(self, request, callback, callback_args, callback_kwargs):
        hook = self._process_view_sync
        if self.needs_thread_for_view(request, callback):
            return await _in_thread(hook)(request, callback, callback_args, callback_kwargs)
        return hook(request, callback, callback_args, callback_kwargs)

    def needs_thread_for_request(self, request) -> bool:
        return False

    def needs_thread_for_response(self, request, response) -> bool:
        return False

    def needs_thread_for_view(self, request, callback) -> bool:
        return False


class PrometheusBeforeMiddleware(InLoopHooksMixin, _PrometheusBefore):
    pass


class SecurityMiddleware(InLoopHooksMixin, _Security):
    pass


class SessionMiddleware(InLoopHooksMixin, _Session):
    def needs_thread_for_response(self, request, response) -> bool:
        # Saving is the only I/O of process_response (reading the flags loads nothing).
        session = getattr(request, "session", None)
        if session is None:
            return False  # Django's hook returns the response untouched then
        return session.modified or settings.SESSION_SAVE_EVERY_REQUEST


class CommonMiddleware(InLoopHooksMixin, _Common):
    pass


class CsrfViewMiddleware(InLoopHooksMixin, _CsrfView):
    # With CSRF_USE_SESSIONS the token lives in the session: every hook may read or write it.
    def needs_thread_for_request(self, request) -> bool:
        return settings.CSRF_USE_SESSIONS

    def needs_thread_for_response(self, request, response) -> bool:
        return settings.CSRF_USE_SESSIONS

    def needs_thread_for_view(self, request, callback) -> bool:
        if settings.CSRF_USE_SESSIONS:
            return True
        # Checking an unsafe request to a protected view may parse a form body or read the
        # session; exempt views (every API view) and safe methods touch neither.
        exempt = getattr(callback, "csrf_exempt", False)
        return not exempt and request.method not in ("GET", "HEAD", "OPTIONS", "TRACE")


class AuthenticationMiddleware(InLoopHooksMixin, _Authentication):
    pass  # process_request only attaches lazy objects


class MessageMiddleware(InLoopHooksMixin, _Message):
    def needs_thread_for_response(self, request, response) -> bool:
        # Storing messages may overflow from the cookie into the session (a database read).
        storage = getattr(request, "_messages", None)
        return storage is not None and (storage.used or storage.added_new)


class XFrameOptionsMiddleware(InLoopHooksMixin, _XFrameOptions):
    pass


class PrometheusAfterMiddleware(InLoopHooksMixin, _PrometheusAfter):
    pass
