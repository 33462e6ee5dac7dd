"""End to end through a real Redis broker and a Celery worker process started here, on the test
database: turns trigger summaries after commit, the worker writes them, planted facts survive
several rounds of re-summarisation, and nothing is deleted."""

import os
import subprocess
import sys
import time

import pytest
from django.conf import settings as django_settings
from django.db import connection

from conversations.models import Message
from memory.context import context_build
from memory.models import Summary
from memory.services import memory_after_turn
from prompts.selectors import ActivePrompt
from tests.memory.conftest import add_messages, filler, make_conversation

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not django_settings.REDIS_URL, reason="needs Redis and PostgreSQL"),
]

TRIGGER, KEEP = 30, 10
PROMPT = ActivePrompt(None, "default-system-prompt", None, "Be helpful.", "claude-sonnet-4-6", 512)
FACTS = ["CITY=Lyon", "PET_NAME=Tom", "FAVOURITE_NUMBER=42"]


@pytest.fixture
def celery_worker(transactional_db, fake_anthropic_server, settings):
    """``celery -A llmapp worker -Q memory,default -P solo`` on the test database."""
    settings.MEMORY_SUMMARY_TRIGGER_MESSAGES = TRIGGER
    settings.MEMORY_KEEP_RECENT = KEEP
    import redis

    redis.Redis.from_url(django_settings.CELERY_BROKER_URL).delete("memory", "default")
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": django_settings.REDIS_URL,
        "ANTHROPIC_BASE_URL": fake_anthropic_server.url,
        "ANTHROPIC_API_KEY": "",
        "SECRET_KEY": "worker-test",
        "MEMORY_SUMMARY_TRIGGER_MESSAGES": str(TRIGGER),
        "MEMORY_KEEP_RECENT": str(KEEP),
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "llmapp", "worker", "-Q", "memory,default"]
        + ["-P", "solo", "--without-gossip", "--without-mingle", "-l", "warning"],
        env=env,
        cwd=django_settings.BASE_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield process
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def turn(conversation, user_text: str, reply: str) -> None:
    """What the chat service does per turn: store the pair, then (after commit) memory upkeep."""
    add_messages(conversation, [user_text, reply])
    built = context_build(conversation=conversation, prompt=PROMPT)
    memory_after_turn(
        conversation_id=conversation.pk,
        model=built.model,
        estimated_input_tokens=built.estimated_tokens,
        reported_input_tokens=0,
    )


def wait_until(predicate, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the worker")
        time.sleep(0.2)


def test_worker_summarises_a_long_conversation_and_facts_survive(celery_worker, alice):
    conversation = make_conversation(alice)
    turn(conversation, "\n".join(["Let me tell you some things.", *FACTS]), "Noted.")
    rounds = 0
    for seq in range(3, 151, 2):
        turn(conversation, filler(seq), filler(seq + 1))
        if conversation.last_seq - _summarised(conversation) >= TRIGGER:
            # A trigger: wait for the worker (real turns are seconds apart) so each round
            # summarises its own range instead of one catch-up summary at the end.
            wait_until(lambda: _summarised(conversation) >= conversation.last_seq - KEEP)
            rounds += 1

    assert rounds == 7  # at 30, 50, ..., 150 messages
    assert celery_worker.poll() is None
    ranges = list(
        Summary.objects.filter(conversation=conversation)
        .order_by("start_seq")
        .values_list("start_seq", "end_seq")
    )
    assert len(ranges) == rounds  # six rounds of re-summarisation after the first
    assert ranges[0][0] == 1
    assert all(b[0] == a[1] + 1 for a, b in zip(ranges, ranges[1:], strict=False))
    assert ranges[-1][1] == 150 - KEEP

    built = context_build(conversation=conversation, prompt=PROMPT)
    summary_block = built.system[-1]["text"]
    assert summary_block.startswith("[[conversation-summary]]")
    for fact in FACTS:
        assert fact in summary_block
    assert built.window_seqs == list(range(ranges[-1][1] + 1, 151))
    assert Message.objects.filter(conversation=conversation).count() == 150


def _summarised(conversation) -> int:
    return (
        Summary.objects.filter(conversation=conversation)
        .order_by("-end_seq")
        .values_list("end_seq", flat=True)
        .first()
        or 0
    )
