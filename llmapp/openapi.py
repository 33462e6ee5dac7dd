"""OpenAPI post-processing: every operation documents the shared error body.

drf-spectacular describes the success responses it can infer; the errors every endpoint can
answer (``{"error": {"code", "message", "request_id", ...}}``) are added here, once, so the
schema matches what clients really receive.
"""

ERROR_BODY = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "request_id"],
            "properties": {
                "code": {"type": "string", "example": "not_found"},
                "message": {"type": "string"},
                "request_id": {"type": "string", "nullable": True},
                "details": {"type": "object", "additionalProperties": True},
                "retryable": {"type": "boolean"},
                "retry_after": {"type": "integer"},
            },
            "additionalProperties": True,
        }
    },
}

COMMON_ERRORS = {
    "400": "Invalid request (malformed JSON, unknown or invalid fields).",
    "401": "Missing, malformed, unknown or revoked API key.",
    "403": "Authenticated, but not allowed (e.g. a member changing prompts).",
    "404": "Not found (another organisation's objects are never visible).",
    "405": "Method not allowed.",
    "409": "Conflict with the current state.",
    "413": "Content too large.",
    "415": "Unsupported media type.",
    "429": "Rate limited, concurrency limited or over budget; see Retry-After.",
    "500": "Internal error.",
    "502": "The model failed.",
    "503": "A backing service (database, rate limiter, model) is unavailable.",
    "504": "The model timed out.",
}


def add_error_responses(result, generator, request, public):
    """drf-spectacular POSTPROCESSING_HOOK."""
    result.setdefault("components", {}).setdefault("schemas", {})["ErrorBody"] = ERROR_BODY
    ref = {"$ref": "#/components/schemas/ErrorBody"}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for status, description in COMMON_ERRORS.items():
                responses.setdefault(
                    status,
                    {"description": description, "content": {"application/json": {"schema": ref}}},
                )
    return result
