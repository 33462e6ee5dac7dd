"""``{{variable}}`` placeholders in system prompts: the check on save and the render per turn.

A prompt may use only the variables a turn supplies (``TURN_VARIABLES``). A version declares the
ones it uses (``PromptVersion.variables``); on save every placeholder must be declared and every
declared variable must appear, so a typo (``{{organisation_name}}``) is a 400, never a prompt
that silently reaches the model with a literal ``{{...}}`` in it.

Rendering is plain substitution (no logic, no filters, no attribute access): a prompt author
cannot reach anything but the values below.
"""

import re
from collections.abc import Iterable, Mapping

from llmapp.errors import ApiError

# What every turn supplies, and what it means. Keep in step with ``turn_variables``.
TURN_VARIABLES: dict[str, str] = {
    "organization_name": "the display name of the caller's organisation",
    "user_name": "the full name (else username) of the user who owns the conversation",
    "date": "today's date in UTC, ISO 8601 (2026-11-28)",
}

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
PLACEHOLDER = re.compile(r"\{\{\s*(" + _NAME + r")\s*\}\}")


def template_placeholders(content: str) -> list[str]:
    """The variable names used by ``content``, in first-use order.

    Raises ApiError 400 ``template_invalid`` on a malformed placeholder (``{{ a b }}``, an
    unclosed ``{{``): left in place it would reach the model verbatim.
    """
    rest = PLACEHOLDER.sub("", content)
    if "{{" in rest or "}}" in rest:
        raise ApiError(
            "The template has a malformed placeholder; use {{variable_name}}.",
            code="template_invalid",
        )
    seen: dict[str, None] = {}
    for match in PLACEHOLDER.finditer(content):
        seen.setdefault(match.group(1), None)
    return list(seen)


def template_check(content: str, declared: Iterable[str] | None) -> list[str]:
    """Validate ``content`` against the ``declared`` variables; return the variable list to store.

    ``declared`` None means "declare what the content uses" (still checked against the turn's
    variables). Errors are 400s with codes ``template_invalid``, ``template_unknown_variable``,
    ``template_undeclared_variable`` and ``template_missing_variable``.
    """
    used = template_placeholders(content)
    if declared is None:
        names = used
    else:
        names = list(dict.fromkeys(declared))
        for name in names:
            if not isinstance(name, str) or not re.fullmatch(_NAME, name):
                raise ApiError(f"Invalid variable name {name!r}.", code="template_invalid")
    unknown = [n for n in names if n not in TURN_VARIABLES]
    if unknown:
        raise ApiError(
            f"Unknown variable(s) {', '.join(unknown)}; a turn supplies only "
            f"{', '.join(TURN_VARIABLES)}.",
            code="template_unknown_variable",
            extra={"variables": unknown},
        )
    undeclared = [n for n in used if n not in names]
    if undeclared:
        raise ApiError(
            f"The content uses undeclared variable(s) {', '.join(undeclared)}.",
            code="template_undeclared_variable",
            extra={"variables": undeclared},
        )
    missing = [n for n in names if n not in used]
    if missing:
        raise ApiError(
            f"Declared variable(s) {', '.join(missing)} do not appear in the content.",
            code="template_missing_variable",
            extra={"variables": missing},
        )
    return names


def template_render(content: str, values: Mapping[str, str]) -> str:
    """Substitute each ``{{name}}``; a name without a value renders as the empty string.

    Substitution is one pass, so a value containing ``{{...}}`` is never expanded again.
    """
    return PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), "")), content)
