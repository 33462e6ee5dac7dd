"""The one error body of the API: ``{"error": {"code", "message", "request_id", ...}}``.

Every error the API returns goes through here: DRF exceptions, the app's own ``ApiError``,
Django's 404/500 handlers, and a lost database (503, never a hang or a bare 500).
"""

from http import HTTPStatus
from typing import Any

import structlog
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response

log = structlog.get_logger(__name__)


class ApiError(exceptions.APIException):
    """An error with a stable machine-readable code; raise it from services and views."""

    status_code = 400
    default_code = "bad_request"
    default_detail = "Bad request."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message or self.default_detail, code or self.default_code)
        self.code = code or self.default_code
        if status is not None:
            self.status_code = status
        self.extra = extra or {}
        self.headers = headers or {}


class NotFound(ApiError):
    status_code = 404
    default_code = "not_found"
    default_detail = "Not found."


class Conflict(ApiError):
    status_code = 409
    default_code = "conflict"
    default_detail = "Conflict."


class ServiceUnavailable(ApiError):
    status_code = 503
    default_code = "service_unavailable"
    default_detail = "A backing service is unavailable; try again shortly."


def error_body(code: str, message: str, request_id: str | None, **extra: Any) -> dict:
    return {"error": {"code": code, "message": message, "request_id": request_id, **extra}}


def error_response(request, code: str, message: str, status: int, **extra: Any) -> JsonResponse:
    """A plain Django JsonResponse in the shared shape (for non-DRF views and handlers)."""
    return JsonResponse(
        error_body(code, message, getattr(request, "request_id", None), **extra), status=status
    )


_DRF_CODES: list[tuple[type[Exception], str]] = [
    (exceptions.NotAuthenticated, "unauthenticated"),
    (exceptions.AuthenticationFailed, "unauthenticated"),
    (exceptions.PermissionDenied, "permission_denied"),
    (exceptions.NotFound, "not_found"),
    (exceptions.ParseError, "malformed_json"),
    (exceptions.UnsupportedMediaType, "unsupported_media_type"),
    (exceptions.NotAcceptable, "not_acceptable"),
    (exceptions.MethodNotAllowed, "method_not_allowed"),
    (exceptions.Throttled, "rate_limited"),
    (exceptions.ValidationError, "invalid_request"),
]


def _first_message(detail: Any) -> str:
    if isinstance(detail, dict):
        for field, value in detail.items():
            inner = _first_message(value)
            return inner if field == "non_field_errors" else f"{field}: {inner}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def api_exception_handler(exc: Exception, context: dict) -> Response:
    """DRF's EXCEPTION_HANDLER: every exception becomes the shared body, unknown ones a logged 500."""
    request = context.get("request")
    request_id = getattr(request, "request_id", None) if request is not None else None
    headers: dict[str, str] = {}

    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, ApiError):
        body = error_body(exc.code, str(exc.detail), request_id, **exc.extra)
        headers.update(exc.headers)
        status = exc.status_code
    elif isinstance(exc, exceptions.APIException):
        code = next((c for cls, c in _DRF_CODES if isinstance(exc, cls)), "bad_request")
        extra = {"details": exc.detail} if isinstance(exc, exceptions.ValidationError) else {}
        body = error_body(code, _first_message(exc.detail), request_id, **extra)
        status = exc.status_code
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
    elif isinstance(exc, IntegrityError):
        # A constraint refused a write that raced another one: the state moved, not the database.
        log.warning("database.integrity_conflict", error=type(exc).__name__)
        body = error_body("conflict", "The change conflicts with the current state.", request_id)
        status = 409
    elif isinstance(exc, OperationalError | InterfaceError | DatabaseError):
        log.error("database.unavailable", error=type(exc).__name__)
        body = error_body("database_unavailable", "The database is unavailable.", request_id)
        status = 503
        headers["Retry-After"] = "1"
    else:
        log.exception("request.unhandled_error")
        body = error_body("internal_error", "Internal server error.", request_id)
        status = 500
    return Response(body, status=status, headers=headers)


def handler404(request, exception=None):
    return error_response(request, "not_found", "Not found.", 404)


def handler500(request):
    return error_response(request, "internal_error", HTTPStatus(500).phrase, 500)
