"""Summarisation requests (system prompt starting with [[summarize]]): extractive and bounded."""

from fake_anthropic.tokens import count_text

SUMMARIZE = "[[summarize]]\nSummarise the conversation so far."

CONVERSATION = [
    {
        "role": "user",
        "content": "Hi, I am planning a trip to Lisbon. It will be my first visit.\n"
        "BUDGET=1200 EUR\nFACT: The user is vegetarian. They like museums.",
    },
    {
        "role": "assistant",
        "content": "Lisbon is lovely in spring. FACT: Flights were booked for 3 May. Enjoy!",
    },
    {"role": "user", "content": "DEPARTURE_DATE=2026-05-03\nWhat should I pack? Rain is possible."},
    {"role": "assistant", "content": "Pack light layers and a rain jacket."},
    {"role": "user", "content": "Please summarise. [[fake:tokens=3]]"},
]


def _summary(api, messages, max_tokens):
    data = {
        "model": "claude-haiku-4-5",
        "max_tokens": max_tokens,
        "system": SUMMARIZE,
        "messages": messages,
    }
    response = api.post("/v1/messages", json=data)
    assert response.status_code == 200
    reply = response.json()
    return reply["content"][0]["text"], reply["stop_reason"], reply["usage"]["output_tokens"]


def test_key_values_and_facts_survive_then_first_sentences_fill(api):
    text, stop_reason, output_tokens = _summary(api, CONVERSATION, 500)
    lines = text.splitlines()

    assert stop_reason == "end_turn"
    assert lines[:4] == [
        "BUDGET=1200 EUR",
        "DEPARTURE_DATE=2026-05-03",
        "FACT: The user is vegetarian.",
        "FACT: Flights were booked for 3 May.",
    ]
    assert "Hi, I am planning a trip to Lisbon." in lines
    assert "Lisbon is lovely in spring." in lines
    assert "What should I pack?" in lines
    assert "Pack light layers and a rain jacket." in lines
    # Only first sentences are used, and directives never appear.
    assert "It will be my first visit." not in text
    assert "[[fake:" not in text
    assert output_tokens == count_text(text)


def test_tight_budget_keeps_facts_and_drops_filler(api):
    facts_only = (
        "BUDGET=1200 EUR\nDEPARTURE_DATE=2026-05-03\n"
        "FACT: The user is vegetarian.\nFACT: Flights were booked for 3 May."
    )
    budget = count_text(facts_only) + 3
    text, stop_reason, output_tokens = _summary(api, CONVERSATION, budget)

    assert text.startswith(facts_only)
    assert stop_reason == "end_turn"
    assert output_tokens <= budget
    assert "Pack light layers" not in text


def test_facts_that_do_not_fit_are_cut_at_max_tokens(api):
    text, stop_reason, output_tokens = _summary(api, CONVERSATION, 6)
    assert stop_reason == "max_tokens"
    assert output_tokens == 6
    assert text.startswith("BUDGET=1200 EUR")


def test_a_previous_summary_in_the_messages_survives(api):
    previous = (
        "[[conversation-summary]]\nCUSTOMER_ID=C-991\nFACT: Order 17 was lost in transit.\n"
        "The customer asked about a refund."
    )
    messages = [
        {"role": "user", "content": previous},
        {"role": "assistant", "content": "Noted. I will check the refund."},
        {"role": "user", "content": "Any news today? FACT: The refund was approved."},
    ]
    text, _, _ = _summary(api, messages, 300)
    lines = text.splitlines()

    assert "CUSTOMER_ID=C-991" in lines
    assert "FACT: Order 17 was lost in transit." in lines
    assert "FACT: The refund was approved." in lines
    assert "[[conversation-summary]]" not in text
    assert "The customer asked about a refund." in lines


def test_summary_is_deterministic_and_not_a_default_reply(api):
    first, _, _ = _summary(api, CONVERSATION, 200)
    second, _, _ = _summary(api, CONVERSATION, 200)
    assert first == second
    assert not first.startswith("Received")


def test_marker_must_start_the_system_prompt(api):
    data = {
        "model": "claude-haiku-4-5",
        "max_tokens": 300,
        "system": "Be brief. [[summarize]]",
        "messages": CONVERSATION[:3],
    }
    text = api.post("/v1/messages", json=data).json()["content"][0]["text"]
    assert text.startswith("Received 3 messages.")
