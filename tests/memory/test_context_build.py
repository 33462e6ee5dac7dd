"""context_build on the database: bounded reads, the summary in the cached prefix, the window
after it, message statuses, fallback when the summary does not fit."""

import pytest

from conversations.models import Message
from fake_anthropic.tokens import count_request
from memory.context import context_build
from memory.models import Summary
from memory.window import SUMMARY_MARKER
from prompts.selectors import ActivePrompt
from tests.memory.conftest import add_messages, filler

pytestmark = pytest.mark.django_db

PROMPT = ActivePrompt(
    version_id=None,
    name="default-system-prompt",
    version=None,
    content="You are a helpful assistant.",
    model="claude-sonnet-4-6",
    max_tokens=1024,
)


def test_reads_are_bounded_whatever_the_history(conversation, django_assert_num_queries, settings):
    settings.MEMORY_WINDOW_MAX_MESSAGES = 50
    add_messages(conversation, [filler(i) for i in range(1, 2002)])
    with django_assert_num_queries(2):  # the latest summary, then the bounded tail
        built = context_build(conversation=conversation, prompt=PROMPT)
    assert built.window_seqs[-1] == 2001
    assert len(built.window_seqs) <= 50
    assert built.messages[0]["role"] == "user"


def test_summary_is_the_last_system_block_and_the_window_follows_it(conversation):
    add_messages(conversation, [filler(i) for i in range(1, 62)])
    Summary.objects.create(
        conversation=conversation, start_seq=1, end_seq=40, content="CITY=Lyon", model="m"
    )
    built = context_build(conversation=conversation, prompt=PROMPT)
    assert [b["text"].split("\n")[0] for b in built.system] == [PROMPT.content, SUMMARY_MARKER]
    assert "CITY=Lyon" in built.system[-1]["text"]
    assert built.summary_id is not None
    assert built.window_seqs == list(range(41, 62))
    assert built.messages[-1]["content"] == filler(61)
    assert built.estimated_tokens <= built.budget
    assert count_request(built.system, built.messages) <= built.limit
    # Deterministic.
    assert context_build(conversation=conversation, prompt=PROMPT) == built


def test_failed_replies_are_skipped_stopped_ones_kept_and_roles_alternate(conversation):
    add_messages(conversation, ["hello", "partial answer", "again?", "", "third try"])
    Message.objects.filter(conversation=conversation, seq=2).update(status="stopped")
    Message.objects.filter(conversation=conversation, seq=4).update(status="failed")
    Message.objects.create(
        conversation=conversation, seq=6, role="assistant", content="", status="streaming"
    )
    built = context_build(conversation=conversation, prompt=PROMPT)
    assert built.messages == [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "partial answer"},
        {"role": "user", "content": "again?\n\nthird try"},
    ]
    assert built.window_seqs == [1, 2, 3, 5]


def test_summary_that_does_not_fit_falls_back_to_the_window(conversation, settings):
    settings.MEMORY_CONTEXT_BUDGET_TOKENS = 400
    settings.MEMORY_TOKEN_MARGIN = 1.0
    add_messages(conversation, [filler(i) for i in range(1, 30)])
    Summary.objects.create(
        conversation=conversation,
        start_seq=1,
        end_seq=10,
        content="FACT: a long summary. " * 200,
        model="m",
    )
    built = context_build(conversation=conversation, prompt=PROMPT)
    assert built.summary is None
    assert built.summary_dropped
    assert len(built.system) == 1
    assert built.window_seqs[-1] == 29
    assert built.window_seqs[0] > 11  # only as much of the window as fits
    assert count_request(built.system, built.messages) <= 400


def test_a_huge_newest_message_is_cut_in_the_middle(conversation, settings):
    settings.MEMORY_CONTEXT_BUDGET_TOKENS = 300
    settings.MEMORY_TOKEN_MARGIN = 1.0
    huge = "START " + "lorem ipsum dolor " * 2000 + " END [[fake:tokens=5]]"
    add_messages(conversation, ["hi", "hello", huge])
    built = context_build(conversation=conversation, prompt=PROMPT)
    assert built.truncated_seq == 3
    assert built.messages == [{"role": "user", "content": built.messages[0]["content"]}]
    text = built.messages[0]["content"]
    assert text.startswith("START lorem")
    assert text.endswith("END [[fake:tokens=5]]")
    assert "characters omitted to fit the context window" in text
    assert count_request(built.system, built.messages) <= 300


def test_the_model_bills_no_more_than_the_budget_and_calibration_never_lowers(
    conversation, settings
):
    """A real request (SDK -> fake_anthropic) of a tight context: the upstream's billed input
    stays under the budget; feeding its usage back keeps or raises the margin."""
    from llmapp import llm
    from memory.services import memory_after_turn
    from memory.tokens import margin_get

    settings.MEMORY_CONTEXT_BUDGET_TOKENS = 900
    settings.LLM_MAX_RETRIES = 0
    contents = [
        "def f(x):\n    return {k: v for k, v in x.items() if v}  # ünïcødé",
        "Ответ: 日本語のテキスト 🙂 — 12345678 items.",
    ] * 20 + ["And now? [[fake:tokens=5]]"]
    add_messages(conversation, contents)
    built = context_build(conversation=conversation, prompt=PROMPT)
    assert built.window_seqs[0] > 1  # the budget, not the history, bounds the window
    result = llm.complete_sync(
        model=built.model, system=built.system, messages=built.messages, max_tokens=16
    )
    reported = result.usage.total_input_tokens
    assert reported <= built.budget <= built.limit
    before = margin_get(built.model)
    memory_after_turn(
        conversation_id=conversation.pk,
        model=built.model,
        estimated_input_tokens=built.estimated_tokens,
        reported_input_tokens=reported,
    )
    assert margin_get(built.model) >= before
