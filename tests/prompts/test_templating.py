"""The {{variable}} check on save and the render per turn (pure functions, no database)."""

import pytest

from llmapp.errors import ApiError
from prompts.templating import TURN_VARIABLES, template_check, template_render


def test_declared_variables_must_match_the_placeholders_exactly():
    content = "Org {{organization_name}}, on {{ date }}."
    assert template_check(content, ["organization_name", "date"]) == ["organization_name", "date"]
    # None declares what the content uses.
    assert template_check(content, None) == ["organization_name", "date"]


@pytest.mark.parametrize(
    ("content", "declared", "code"),
    [
        ("Hi {{user_name}}", [], "template_undeclared_variable"),
        ("Hi {{user_name}}", ["user_name", "date"], "template_missing_variable"),
        ("Hi {{organisation_name}}", None, "template_unknown_variable"),
        ("Hi {{secret}}", ["secret"], "template_unknown_variable"),
        ("Hi {{user name}}", None, "template_invalid"),
        ("Hi {{user_name", None, "template_invalid"),
        ("Hi user_name}}", None, "template_invalid"),
        ("Hi", ["bad-name"], "template_invalid"),
    ],
)
def test_bad_templates_are_400_with_a_code(content, declared, code):
    with pytest.raises(ApiError) as info:
        template_check(content, declared)
    assert info.value.status_code == 400
    assert info.value.code == code


def test_render_substitutes_once_and_never_expands_values():
    out = template_render(
        "{{user_name}} at {{organization_name}} ({{ date }})",
        {"user_name": "{{date}}", "organization_name": "Acme", "date": "2026-11-28"},
    )
    assert out == "{{date}} at Acme (2026-11-28)"


def test_turn_variables_are_documented():
    assert set(TURN_VARIABLES) == {"organization_name", "user_name", "date"}
