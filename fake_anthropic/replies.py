"""What the fake model says. Deterministic: the same request always gets the same text.

Default reply
    Tells a person what the model received: the number of messages, the last user message
    (quoted, truncated to 12 words), the first words of the system prompt and whether a
    conversation summary is present (a system block, or line, starting with
    ``[[conversation-summary]]``), e.g. ``Received 3 messages. Last user message: "Hi there"
    System prompt: "You are a helpful..." Summary: present (4 lines).`` Filler
    prose (seeded by the request) pads it to the requested length (``tokens`` knob); the
    whole is then cut to exactly that many tokens.

Summarisation
    A request whose system prompt starts with ``[[summarize]]`` gets an extractive summary of
    the messages' text (directives stripped), one item per line:

    1. every line matching ``^[A-Z][A-Z0-9_]*=\\S.*$`` (``KEY=VALUE``), in order, deduplicated;
    2. every sentence starting with ``FACT:``, in order, deduplicated;
    3. then, while the budget allows, the first sentence of each message not already used.

    Items 1 and 2 always come first; if they alone exceed ``max_tokens`` the text is cut there
    and ``stop_reason`` is ``max_tokens``. A previous summary passed in the messages is read the
    same way, so its ``KEY=VALUE`` lines and facts survive re-summarisation. The ``tokens`` knob
    does not apply to summaries.

Either reply is cut at ``max_tokens`` (``stop_reason: max_tokens``) and at the first stop
sequence (``stop_reason: stop_sequence``).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass

from fake_anthropic.knobs import strip_directives
from fake_anthropic.tokens import content_text, count_text, system_blocks, truncate_to_tokens

SUMMARIZE_MARKER = "[[summarize]]"
SUMMARY_MARKER = "[[conversation-summary]]"
KEY_VALUE = re.compile(r"^[A-Z][A-Z0-9_]*=\S.*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_DELTA = re.compile(r"\s*\S{1,8}|\s+")

_FILLER_WORDS = [
    "the",
    "model",
    "keeps",
    "answering",
    "in",
    "plain",
    "words",
    "while",
    "the",
    "test",
    "measures",
    "each",
    "part",
    "of",
    "the",
    "stream",
    "and",
    "every",
    "token",
    "is",
    "counted",
    "twice",
    "over",
    "so",
    "that",
    "nothing",
    "goes",
    "missing",
    "between",
    "the",
    "server",
    "and",
    "the",
    "client",
    "which",
    "reads",
    "the",
    "events",
    "one",
    "by",
    "one",
    "and",
    "checks",
    "their",
    "order",
    "carefully",
    "a",
    "reply",
    "like",
    "this",
    "one",
    "carries",
    "no",
    "meaning",
    "beyond",
    "its",
    "length",
    "and",
    "its",
    "timing",
    "yet",
    "it",
    "looks",
    "enough",
    "like",
    "prose",
    "for",
    "a",
    "person",
    "to",
    "skim",
    "it",
]


@dataclass(frozen=True)
class Reply:
    text: str
    stop_reason: str
    stop_sequence: str | None = None


def is_summarize_request(system: object) -> bool:
    blocks = system_blocks(system)
    return bool(blocks) and str(blocks[0].get("text", "")).lstrip().startswith(SUMMARIZE_MARKER)


def split_deltas(text: str) -> list[str]:
    """Text deltas of a few characters up to a word each; they join back to ``text``."""
    return _DELTA.findall(text)


def _request_seed(model: str, system: object, messages: list[dict]) -> int:
    canonical = json.dumps([model, system, messages], sort_keys=True, default=str)
    return int.from_bytes(hashlib.sha256(canonical.encode()).digest()[:8], "big")


def _filler(seed: int, tokens: int) -> str:
    rng = random.Random(seed)
    sentences: list[str] = []
    used = 0
    while used < tokens:
        words = [rng.choice(_FILLER_WORDS) for _ in range(rng.randint(6, 14))]
        sentence = " ".join(words).capitalize() + "."
        sentences.append(sentence)
        used += count_text(sentence)
    return " ".join(sentences)


def _quote(text: str, *, words: int, chars: int) -> str:
    parts = text.split()
    short = " ".join(parts[:words])
    if len(short) > chars:
        short = short[:chars].rstrip()
    return short + ("..." if short != " ".join(parts) else "")


def describe(system: object, messages: list[dict]) -> str:
    """The sentence saying what was received (the start of every default reply)."""
    blocks = system_blocks(system)
    summary_lines = 0
    summary_present = False
    prompt_texts: list[str] = []
    for block in blocks:
        text = str(block.get("text", ""))
        if text.lstrip().startswith(SUMMARY_MARKER):
            summary_present = True
            summary_lines += len(text.strip().splitlines()) - 1
            continue
        for line in text.splitlines():
            if line.lstrip().startswith(SUMMARY_MARKER):
                summary_present = True
        prompt_texts.append(text)
    count = len(messages)
    parts = [f"Received {count} message{'s' if count != 1 else ''}."]
    last_user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    if last_user is not None:
        said = _quote(strip_directives(content_text(last_user.get("content"))), words=12, chars=80)
        parts.append(f' Last user message: "{said}"')
    if prompt_texts:
        parts.append(f' System prompt: "{_quote(" ".join(prompt_texts), words=6, chars=48)}"')
    else:
        parts.append(" No system prompt.")
    if summary_present:
        parts.append(f" Summary: present ({summary_lines} lines).")
    else:
        parts.append(" Summary: none.")
    return "".join(parts)


def _sentences(text: str) -> list[str]:
    out: list[str] = []
    for line in text.splitlines():
        out.extend(s.strip() for s in _SENTENCE_END.split(line.strip()) if s.strip())
    return out


def _is_plain(sentence: str) -> bool:
    """Not a KEY=VALUE line, a fact or a marker such as ``[[conversation-summary]]``."""
    return not (
        KEY_VALUE.match(sentence) or sentence.startswith("FACT:") or sentence.startswith("[[")
    )


def summarize(messages: list[dict], max_tokens: int) -> Reply:
    """The extractive summary described in the module docstring."""
    kept: list[str] = []
    seen: set[str] = set()
    texts = [strip_directives(content_text(m.get("content"))) for m in messages]
    for text in texts:
        for line in text.splitlines():
            line = line.strip()
            if KEY_VALUE.match(line) and line not in seen:
                seen.add(line)
                kept.append(line)
    for text in texts:
        for sentence in _sentences(text):
            if sentence.startswith("FACT:") and sentence not in seen:
                seen.add(sentence)
                kept.append(sentence)
    body = "\n".join(kept)
    if count_text(body) > max_tokens:
        return Reply(truncate_to_tokens(body, max_tokens), "max_tokens")
    used = count_text(body)
    extra: list[str] = []
    for text in texts:
        first = next((s for s in _sentences(text) if _is_plain(s)), None)
        if first is None or first in seen:
            continue
        cost = count_text(first) + (1 if kept or extra else 0)  # the newline before it
        if used + cost > max_tokens:
            continue
        seen.add(first)
        extra.append(first)
        used += cost
    return Reply("\n".join(kept + extra), "end_turn")


def _apply_limits(reply: Reply, max_tokens: int, stop_sequences: list[str]) -> Reply:
    text, stop_reason = reply.text, reply.stop_reason
    if count_text(text) > max_tokens:
        text, stop_reason = truncate_to_tokens(text, max_tokens), "max_tokens"
    hits = [(text.find(s), s) for s in stop_sequences if s in text]
    if hits:
        index, sequence = min(hits)
        return Reply(text[:index], "stop_sequence", sequence)
    return Reply(text, stop_reason)


def make_reply(
    *,
    model: str,
    system: object,
    messages: list[dict],
    max_tokens: int,
    tokens: int,
    stop_sequences: list[str] | None = None,
) -> Reply:
    """The reply to a validated request."""
    if is_summarize_request(system):
        reply = summarize(messages, max_tokens)
    else:
        head = describe(system, messages)
        seed = _request_seed(model, system, messages)
        full = f"{head} {_filler(seed, max(tokens - count_text(head), 0))}".rstrip()
        reply = Reply(truncate_to_tokens(full, tokens), "end_turn")
    return _apply_limits(reply, max_tokens, stop_sequences or [])
