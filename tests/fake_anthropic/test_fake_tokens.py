"""The fake's token counter: realistic ratios, not chars/4, and exact truncation."""

import math

import pytest

from fake_anthropic.tokens import count_request, count_text, truncate_to_tokens

PROSE = (
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was "
    "the age of foolishness, it was the epoch of belief, it was the epoch of incredulity. "
    "The Django web framework encourages rapid development and clean, pragmatic design. "
    "Built by experienced developers, it takes care of much of the hassle of web "
    "development, so you can focus on writing your app without needing to reinvent the "
    "wheel. Photosynthesis is the process by which green plants and certain other organisms "
    "transform light energy into chemical energy."
)
CODE = """def handler(request):
    data = {"id": request.id, "items": [1, 2, 3]}
    if not data["items"]:
        return None
    return json.dumps(data, indent=2)
"""
UNICODE = "Привет, как дела? Сегодня хорошая погода. 今日はいい天気ですね。我们明天去公园吧。"


def test_english_prose_is_about_four_characters_per_token():
    ratio = len(PROSE) / count_text(PROSE)
    assert 3.5 <= ratio <= 4.5


def test_code_and_unicode_cost_more_per_character():
    prose = len(PROSE) / count_text(PROSE)
    assert len(CODE) / count_text(CODE) < prose - 1
    assert len(UNICODE) / count_text(UNICODE) < 2


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("cat", 1),
        ("because", 2),
        ("information", 3),
        ("2025", 2),
        ("----", 1),
        ("a, b", 3),
        ("line\nline", 3),
        ("    indented", 3),
        ("", 0),
    ],
)
def test_counting_rules(text, tokens):
    assert count_text(text) == tokens


def test_differs_from_chars_over_four():
    samples = [PROSE, CODE, UNICODE, "Hello, world!", "x = [1, 2, 3]"]
    assert sum(count_text(s) != math.ceil(len(s) / 4) for s in samples) >= 4


def test_request_overheads():
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]
    assert count_request(None, messages) == 3 + 2 * (4 + 1)
    assert count_request("Be kind", messages) == 3 + 3 + 2 + 2 * (4 + 1)
    assert count_request([{"type": "text", "text": "Be kind"}], messages) == 18


@pytest.mark.parametrize("budget", range(0, 40, 3))
def test_truncation_is_exact_and_a_prefix(budget):
    cut = truncate_to_tokens(PROSE, budget)
    assert PROSE.startswith(cut)
    assert count_text(cut) == budget
