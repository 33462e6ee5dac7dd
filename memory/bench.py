"""Figures for the memory feature (printed by the benchmark runner, not asserted).

``run()`` returns a dict:

* ``context_build_ms_100`` / ``context_build_ms_10000``: median time of ``context_build`` for a
  conversation of 100 and of 10,000 stored messages, both right after a summarisation (the
  latest summary covers all but the MEMORY_KEEP_RECENT newest), so only the length of the
  history differs; ``context_build_ratio_10k_100`` their ratio (target: within 1.5).
  ``context_build_ms_10000_unsummarised``: the worst case, no summary at all (the tail read is
  then capped at MEMORY_WINDOW_MAX_MESSAGES).
* for N in 60, 200, 1000: ``full_history_tokens_N`` (the prompt plus every message, what
  "send everything" would cost), ``sent_tokens_N`` (what the context builder sends),
  ``context_token_reduction_N`` (``1 - sent / full``; target at 200: 0.9 or more), with
  ``summaries_N`` written on the way. Tokens are the app's own estimate, the same for both
  sides. Summaries are real: ``summary_generate`` calls the model (``ANTHROPIC_BASE_URL``,
  fake_anthropic in benchmarks) whenever the default trigger fires after a turn.

Everything runs inside one transaction that is rolled back: the database is left as it was.
Use: ``python manage.py shell -c "from memory.bench import run; print(run())"``.
"""

from __future__ import annotations

import random
import statistics
import time

from django.conf import settings
from django.db import transaction

from conversations.models import Conversation, Message
from memory.context import context_build
from memory.models import Summary
from memory.services import summary_backlog, summary_due, summary_generate
from memory.tokens import estimate_request
from prompts.selectors import ActivePrompt

_WORDS = [
    "the",
    "a",
    "model",
    "user",
    "reply",
    "question",
    "answer",
    "context",
    "budget",
    "summary",
    "window",
    "token",
    "message",
    "memory",
    "cost",
    "time",
    "because",
    "which",
    "would",
    "could",
    "should",
    "about",
    "their",
    "there",
    "order",
    "detail",
    "plan",
    "project",
    "deadline",
    "meeting",
    "review",
    "result",
    "number",
    "report",
    "change",
    "system",
    "design",
    "test",
    "data",
]


class _Rollback(Exception):
    pass


def _text(rng: random.Random, words: int) -> str:
    sentences, left = [], words
    while left > 0:
        n = min(left, rng.randint(6, 16))
        sentences.append(" ".join(rng.choice(_WORDS) for _ in range(n)).capitalize() + ".")
        left -= n
    return " ".join(sentences)


def _message(rng: random.Random, seq: int) -> str:
    if seq % 2:  # user
        text = _text(rng, rng.randint(15, 50))
        return f"FACT: item {seq} matters.\n{text}" if seq % 25 == 1 else text
    return _text(rng, rng.randint(60, 180))


def _fixture_conversation() -> Conversation:
    from django.contrib.auth import get_user_model

    from tenants.models import Organization

    org = Organization.objects.create(slug=f"bench-memory-{time.time_ns()}", name="bench")
    user = get_user_model().objects.create(username=f"bench-memory-{time.time_ns()}")
    return Conversation.objects.create(organization=org, user=user, title="bench")


def _append(conversation: Conversation, contents: list[str]) -> None:
    first = conversation.last_seq + 1
    Message.objects.bulk_create(
        Message(
            conversation=conversation,
            seq=first + i,
            role="user" if (first + i) % 2 else "assistant",
            content=content,
        )
        for i, content in enumerate(contents)
    )
    conversation.last_seq = first + len(contents) - 1
    Conversation.objects.filter(pk=conversation.pk).update(last_seq=conversation.last_seq)


def _build_time_ms(prompt: ActivePrompt, n: int, repeats: int, *, summarised: bool) -> float:
    rng = random.Random(n)
    conversation = _fixture_conversation()
    _append(conversation, [_message(rng, seq) for seq in range(1, n + 1)])
    end = n - settings.MEMORY_KEEP_RECENT
    if summarised and end > 0:
        Summary.objects.create(
            conversation=conversation,
            start_seq=1,
            end_seq=end,
            content="\n".join(f"FACT: item {s} matters." for s in range(1, end, 25)),
            model=prompt.model,
        )
    context_build(conversation=conversation, prompt=prompt)  # warm up
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        context_build(conversation=conversation, prompt=prompt)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def _token_figures(prompt: ActivePrompt, checkpoints: tuple[int, ...]) -> dict:
    rng = random.Random(7)
    conversation = _fixture_conversation()
    history: list[dict] = []
    figures: dict = {}
    system = [{"type": "text", "text": prompt.content}]
    for seq in range(1, max(checkpoints) + 1, 2):
        pair = [_message(rng, seq), _message(rng, seq + 1)]
        _append(conversation, pair)
        history += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
        built = context_build(conversation=conversation, prompt=prompt)
        if summary_due(
            unsummarised=summary_backlog(conversation_id=conversation.pk),
            estimated_tokens=built.estimated_tokens,
            budget=built.budget,
        ):
            summary_generate(conversation_id=conversation.pk)  # as the worker would
        n = seq + 1
        if n in checkpoints:
            # The next turn's context, as the context endpoint shows it.
            built = context_build(conversation=conversation, prompt=prompt)
            full = estimate_request(system, history)
            figures[f"full_history_tokens_{n}"] = full
            figures[f"sent_tokens_{n}"] = built.estimated_tokens
            figures[f"context_token_reduction_{n}"] = round(1 - built.estimated_tokens / full, 3)
            figures[f"summaries_{n}"] = Summary.objects.filter(conversation=conversation).count()
            figures[f"window_messages_{n}"] = len(built.window_seqs)
    return figures


def run(
    *, repeats: int = 30, checkpoints: tuple[int, ...] = (60, 200, 1000), quick: bool = False
) -> dict:
    """Measure and return the figures (see the module docstring); leaves no rows behind.

    ``quick`` (``make bench-quick``): no 1000-message checkpoint and no unsummarised
    10,000-message case; the issue's two keys are still measured."""
    if quick:
        checkpoints = tuple(n for n in checkpoints if n <= 200)
    prompt = ActivePrompt(
        version_id=None,
        name="bench",
        version=None,
        content="You are a helpful assistant for a busy project team.",
        model=settings.LLM_DEFAULT_MODEL,
        max_tokens=settings.LLM_DEFAULT_MAX_TOKENS,
    )
    figures: dict = {}
    try:
        with transaction.atomic():
            small = _build_time_ms(prompt, 100, repeats, summarised=True)
            large = _build_time_ms(prompt, 10_000, repeats, summarised=True)
            figures["context_build_ms_100"] = round(small, 3)
            figures["context_build_ms_10000"] = round(large, 3)
            figures["context_build_ratio_10k_100"] = round(large / small, 3)
            if not quick:
                figures["context_build_ms_10000_unsummarised"] = round(
                    _build_time_ms(prompt, 10_000, repeats, summarised=False), 3
                )
            figures.update(_token_figures(prompt, checkpoints))
            raise _Rollback
    except _Rollback:
        pass
    figures["settings"] = {
        "MEMORY_SUMMARY_TRIGGER_MESSAGES": settings.MEMORY_SUMMARY_TRIGGER_MESSAGES,
        "MEMORY_KEEP_RECENT": settings.MEMORY_KEEP_RECENT,
        "MEMORY_WINDOW_MAX_MESSAGES": settings.MEMORY_WINDOW_MAX_MESSAGES,
    }
    return figures
