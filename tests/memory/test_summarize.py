"""The summariser against fake_anthropic (the real SDK over a socket), run in-process: a good
summary, every fault (nothing stored, the window alone still fits), retries, the trigger."""

import uuid

import pytest
import redis
from django.conf import settings as django_settings

from memory.context import context_build
from memory.models import Summary
from memory.services import SummaryFailed, memory_after_turn, summary_generate
from memory.tasks import summarize_conversation
from prompts.selectors import ActivePrompt
from tests.memory.conftest import add_messages, filler

pytestmark = pytest.mark.django_db

PROMPT = ActivePrompt(None, "default-system-prompt", None, "Be helpful.", "claude-sonnet-4-6", 512)


@pytest.fixture(autouse=True)
def _one_request_per_attempt(settings):
    """No SDK retries inside an attempt, so each attempt is one request the fake can fail."""
    settings.LLM_MAX_RETRIES = 0


def planted(conversation, *, first: str, count: int = 60) -> str:
    """``count`` messages; the first carries facts and ``first`` (a directive, maybe)."""
    tag = uuid.uuid4().hex[:8]  # the fake's fail-first counts per request body
    contents = [f"CITY=Lyon\nFACT: the cat is called Tom-{tag}. {first}"]
    contents += [filler(i) for i in range(2, count + 1)]
    add_messages(conversation, contents)
    return tag


def stats(fake) -> dict:
    return fake.stats()


def test_a_summary_covers_all_but_the_newest_and_replaces_them_in_the_context(conversation):
    planted(conversation, first="")
    result = summarize_conversation.apply(args=[str(conversation.pk)])
    summary = Summary.objects.get(conversation=conversation)
    assert result.result == summary.pk
    assert (summary.start_seq, summary.end_seq) == (1, 40)
    assert "CITY=Lyon" in summary.content
    assert "FACT: the cat is called Tom-" in summary.content
    assert summary.tokens_in > 0
    assert summary.tokens_out > 0
    assert summary.model == "claude-sonnet-4-6"
    built = context_build(conversation=conversation, prompt=PROMPT)
    assert built.summary_id == summary.pk
    assert built.window_seqs == list(range(41, 61))
    # Nothing is due any more: a second run is a no-op.
    assert summarize_conversation.apply(args=[str(conversation.pk)]).result is None
    assert Summary.objects.filter(conversation=conversation).count() == 1


def test_overloaded_is_retried_then_succeeds(conversation, fake_anthropic_server):
    planted(conversation, first="[[fake:fail-first=2]]")
    before = stats(fake_anthropic_server)["by_status"].get("529", 0)
    with pytest.raises(SummaryFailed) as failure:
        summary_generate(conversation_id=conversation.pk)  # first 529: nothing stored
    assert failure.value.retryable
    assert not Summary.objects.exists()
    result = summarize_conversation.apply(args=[str(conversation.pk)])  # 529, then success
    assert stats(fake_anthropic_server)["by_status"].get("529", 0) - before == 2
    summary = Summary.objects.get()
    assert result.result == summary.pk
    assert (summary.start_seq, summary.end_seq) == (1, 40)


@pytest.mark.parametrize(
    "directive",
    [
        "[[fake:error-after=1]]",  # overloaded_error event mid-stream
        "[[fake:cut-after=1]]",  # connection dropped, no message_stop
        "[[fake:end-after=1]]",  # body ends cleanly but without message_stop
        "[[fake:status=500]]",
    ],
)
def test_a_failed_summary_changes_nothing_and_the_window_still_fits(
    conversation, directive, settings, fake_anthropic_server
):
    planted(conversation, first=directive)
    before = stats(fake_anthropic_server)["requests"]
    result = summarize_conversation.apply(args=[str(conversation.pk)])
    assert result.result is None
    # Retried with backoff (eagerly here): the first attempt plus MEMORY_SUMMARY_MAX_RETRIES.
    attempts = stats(fake_anthropic_server)["requests"] - before
    assert attempts == summarize_conversation.max_retries + 1
    assert not Summary.objects.exists()
    settings.MEMORY_CONTEXT_BUDGET_TOKENS = 600
    built = context_build(conversation=conversation, prompt=PROMPT)
    assert built.summary is None
    assert built.window_seqs[-1] == 60
    assert built.estimated_tokens <= built.budget


def test_a_timed_out_summary_is_retried_then_given_up(conversation, settings):
    settings.LLM_FIRST_TOKEN_TIMEOUT_SECONDS = 0.3
    planted(conversation, first="[[fake:ttft-ms=2000]]")
    with pytest.raises(SummaryFailed, match="model_timeout"):
        summary_generate(conversation_id=conversation.pk)
    assert summarize_conversation.apply(args=[str(conversation.pk)]).result is None
    assert not Summary.objects.exists()


def test_a_truncated_summary_is_refused(conversation, settings):
    settings.MEMORY_SUMMARY_MAX_TOKENS = 30
    facts = "\n".join(f"KEY_{i}=value number {i}" for i in range(40))
    planted(conversation, first="\n" + facts)
    with pytest.raises(SummaryFailed, match="max_tokens"):
        summary_generate(conversation_id=conversation.pk)
    assert summarize_conversation.apply(args=[str(conversation.pk)]).result is None
    assert not Summary.objects.exists()


def test_a_bad_request_is_not_retried(conversation, fake_anthropic_server):
    planted(conversation, first="[[fake:status=400]]")
    before = stats(fake_anthropic_server)["requests"]
    assert summarize_conversation.apply(args=[str(conversation.pk)]).result is None
    assert stats(fake_anthropic_server)["requests"] - before == 1
    assert not Summary.objects.exists()


def test_rolling_summaries_chain_and_keep_facts(conversation):
    planted(conversation, first="", count=60)
    summarize_conversation.apply(args=[str(conversation.pk)])
    add_messages(conversation, [f"FACT: round two note {i}." for i in range(61, 101)])
    summarize_conversation.apply(args=[str(conversation.pk)])
    first, second = Summary.objects.filter(conversation=conversation).order_by("start_seq")
    assert (first.start_seq, first.end_seq, second.start_seq, second.end_seq) == (1, 40, 41, 80)
    assert "CITY=Lyon" in second.content  # carried over from the previous summary
    assert "FACT: round two note 61." in second.content


def _broker_queue_length() -> int:
    return redis.Redis.from_url(django_settings.CELERY_BROKER_URL).llen("memory")


@pytest.mark.skipif(not django_settings.REDIS_URL, reason="needs a Redis broker")
def test_after_turn_enqueues_on_the_memory_queue_after_commit(
    conversation, django_capture_on_commit_callbacks
):
    client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    client.delete("memory")
    add_messages(conversation, [filler(i) for i in range(1, 60)])
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        memory_after_turn(
            conversation_id=conversation.pk,
            model="claude-sonnet-4-6",
            estimated_input_tokens=900,
            reported_input_tokens=800,
        )
    assert callbacks == []  # 59 messages: below the trigger
    add_messages(conversation, [filler(60)])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        memory_after_turn(
            conversation_id=conversation.pk,
            model="claude-sonnet-4-6",
            estimated_input_tokens=900,
            reported_input_tokens=800,
        )
    assert len(callbacks) == 1
    assert _broker_queue_length() == 0  # nothing published before the commit
    callbacks[0]()
    assert _broker_queue_length() == 1  # published, not run: the request path never waits
    assert not Summary.objects.exists()
    callbacks[0]()  # a second trigger while one is pending publishes nothing
    assert _broker_queue_length() == 1
    client.delete("memory")


def test_after_turn_runs_in_process_without_a_broker(
    conversation, django_capture_on_commit_callbacks
):
    add_messages(conversation, [filler(i) for i in range(1, 61)])
    app = summarize_conversation.app
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            memory_after_turn(
                conversation_id=conversation.pk,
                model="claude-sonnet-4-6",
                estimated_input_tokens=900,
                reported_input_tokens=0,
            )
    finally:
        app.conf.task_always_eager = previous
    assert Summary.objects.filter(conversation=conversation, end_seq=40).exists()


def test_budget_share_triggers_before_the_message_count(
    conversation, django_capture_on_commit_callbacks, settings
):
    settings.MEMORY_SUMMARY_TRIGGER_BUDGET_SHARE = 0.5
    add_messages(conversation, [filler(i) for i in range(1, 31)])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        memory_after_turn(
            conversation_id=conversation.pk,
            model="claude-sonnet-4-6",
            estimated_input_tokens=150_000,
            reported_input_tokens=0,
        )
    assert len(callbacks) == 1


def test_a_backlog_passed_by_the_turn_is_an_upper_bound(
    conversation, django_capture_on_commit_callbacks
):
    """A summary stored while the turn streamed makes the turn's count stale: "due" is checked
    against the stored backlog, so no summary of two messages is queued; "not due" is trusted."""
    add_messages(conversation, [filler(i) for i in range(1, 63)])
    Summary.objects.create(
        conversation=conversation, start_seq=1, end_seq=40, content="earlier", model="m"
    )
    after_turn = {
        "conversation_id": conversation.pk,
        "model": "claude-sonnet-4-6",
        "estimated_input_tokens": 900,
        "reported_input_tokens": 0,
    }
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        memory_after_turn(**after_turn, unsummarised=62)  # seen before the summary landed
    assert callbacks == []  # the stored backlog is 22: below the trigger

    Summary.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        memory_after_turn(**after_turn, unsummarised=62)
    assert len(callbacks) == 1  # really due: queued

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        memory_after_turn(**after_turn, unsummarised=3)
    assert callbacks == []  # "not due" needs no reads and queues nothing
