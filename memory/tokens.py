"""Token counting: the one interface the app uses to size what it sends to the model.

There is no local tokenizer for current Claude models (and nothing is downloaded at run time),
so ``estimate_text`` is a heuristic over characters and words that leans high on purpose:

* an ASCII word costs one token per 4 letters, rounded up;
* a word in another script costs one token per 2.5 UTF-8 bytes (non-Latin scripts cost more
  per character, as with real tokenizers);
* digits cost one token per 2; every punctuation or symbol character costs one;
* whitespace is free except newlines (one each) and runs of spaces (one per 3).

A request adds fixed overheads (``REQUEST_OVERHEAD``, ``SYSTEM_BLOCK_OVERHEAD`` per system block,
``MESSAGE_OVERHEAD`` per message). On top of the estimate sits a safety **margin per model**: it
starts at ``MEMORY_TOKEN_MARGIN`` and is calibrated from what the model reports for a turn
(``usage.input_tokens`` plus the cache tokens) against the estimate of the same context. It only
ever rises (never above ``MEMORY_TOKEN_MARGIN_MAX``) and lives in the shared cache (Redis), so
every process sizes contexts with the same margin.

The budget the estimate must stay under is ``budget_for``: the usable context (the model's window
minus the reply's ``max_tokens``, or ``MEMORY_CONTEXT_BUDGET_TOKENS``) minus the margin, i.e.
``floor(limit / margin)`` estimated tokens.
"""

from __future__ import annotations

import math
import re

import structlog
from django.conf import settings
from django.core.cache import cache

log = structlog.get_logger(__name__)

REQUEST_OVERHEAD = 5
SYSTEM_BLOCK_OVERHEAD = 4
MESSAGE_OVERHEAD = 5

PIECE = re.compile(
    r"(?P<word>[^\W\d_]+)"  # letters of any script
    r"|(?P<num>\d+)"
    r"|(?P<ws>\s+)"
    r"|(?P<sym>.)",
    re.DOTALL,
)
_WORD = re.compile(r"[^\W\d_]+")
_ASCII_CHUNK = re.compile(r"[A-Za-z]{1,4}")
_DIGIT_CHUNK = re.compile(r"\d{1,2}")
_WS_RUN = re.compile(r"\s{2,}")
_NOT_SYMBOL = re.compile(r"[^\W\d_]+|\d+|\s+")
_WIDE = re.compile("[\u0800-\U0010ffff]")  # 3 or 4 UTF-8 bytes: a symbol costs 2
_MARGIN_KEY = "memory:token-margin:{model}"
# Margins are stored as integers (thousandths) so Redis can compare them in a script.
_SCALE = 1000
# Raise-only update, atomic in Redis: two processes calibrating at once keep the larger value.
_RAISE_SCRIPT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local proposed = tonumber(ARGV[1])
if proposed > current then redis.call('SET', KEYS[1], ARGV[1]) return proposed end
return current
"""


def piece_tokens(kind: str, text: str) -> int:
    """Estimated tokens of one ``PIECE`` match of kind ``word``, ``num``, ``ws`` or ``sym``."""
    if kind == "word":
        if text.isascii():
            return math.ceil(len(text) / 4)
        return math.ceil(len(text.encode("utf-8")) / 2.5)
    if kind == "num":
        return math.ceil(len(text) / 2)
    if kind == "ws":
        newlines = text.count("\n") + text.count("\r")
        return newlines + (math.ceil(len(text) / 3) if len(text) > 1 else 0)
    return max(1, math.ceil(len(text.encode("utf-8", "surrogatepass")) / 2))


def estimate_text(text: str) -> int:
    """Estimated tokens of a piece of text (no per-message overhead), without the margin.

    The same count as summing ``piece_tokens`` over ``PIECE`` matches, computed one category
    at a time with C-level regex scans (it runs for every window message of every turn).
    """
    if text.isascii():
        total = len(_ASCII_CHUNK.findall(text))  # a word of n letters splits into ceil(n/4)
    else:
        total = 0
        for word in _WORD.findall(text):
            ascii_word = word.isascii()
            total += (len(word) + 3) // 4 if ascii_word else math.ceil(len(word.encode()) / 2.5)
    total += len(_DIGIT_CHUNK.findall(text))
    total += text.count("\n") + text.count("\r")
    total += sum((len(run) + 2) // 3 for run in _WS_RUN.findall(text))
    symbols = _NOT_SYMBOL.sub("", text)
    return total + len(symbols) + len(_WIDE.findall(symbols))


def estimate_message(content: str) -> int:
    """Estimated tokens of one message: its text plus the per-message overhead."""
    return MESSAGE_OVERHEAD + estimate_text(content)


def estimate_system(blocks: list[dict]) -> int:
    """Estimated tokens of the system blocks (including the request's fixed overhead)."""
    return REQUEST_OVERHEAD + sum(
        SYSTEM_BLOCK_OVERHEAD + estimate_text(str(b.get("text", ""))) for b in blocks
    )


def estimate_request(system: list[dict], messages: list[dict]) -> int:
    """Estimated input tokens of a whole request, without the margin."""
    return estimate_system(system) + sum(estimate_message(m["content"]) for m in messages)


def context_limit(*, model: str, max_tokens: int) -> int:
    """Real tokens the request's input may use: the window minus the reply, or the setting."""
    window = settings.LLM_CONTEXT_WINDOWS.get(model, settings.LLM_DEFAULT_CONTEXT_WINDOW)
    usable = max(window - max_tokens, 0)
    if settings.MEMORY_CONTEXT_BUDGET_TOKENS > 0:
        return min(settings.MEMORY_CONTEXT_BUDGET_TOKENS, usable)
    return usable


def budget_for(*, model: str, max_tokens: int, margin: float | None = None) -> int:
    """The budget in *estimated* tokens: the usable context minus the safety margin."""
    margin = margin_get(model) if margin is None else margin
    return math.floor(context_limit(model=model, max_tokens=max_tokens) / margin)


def _initial_margin() -> float:
    return min(max(settings.MEMORY_TOKEN_MARGIN, 1.0), settings.MEMORY_TOKEN_MARGIN_MAX)


def margin_get(model: str) -> float:
    """The current safety margin for ``model`` (the initial one until calibration raised it).

    A cache outage falls back to the initial margin rather than failing the turn.
    """
    try:
        stored = cache.get(_MARGIN_KEY.format(model=model))
    except Exception:  # the cache being down must not stop a turn
        log.warning("memory.margin_unavailable", model=model)
        stored = None
    initial = _initial_margin()
    if not stored:
        return initial
    return max(initial, min(int(stored) / _SCALE, settings.MEMORY_TOKEN_MARGIN_MAX))


def _margin_raise(model: str, proposed: float) -> float:
    key = _MARGIN_KEY.format(model=model)
    value = math.ceil(round(proposed * _SCALE, 6))  # 1.5 * 1.1 is 1.6500000000000001
    client_getter = getattr(cache, "client", None)
    if client_getter is not None and hasattr(client_getter, "get_client"):
        # django-redis stores ints raw, so the script compares numbers.
        client = client_getter.get_client(write=True)
        stored = client.eval(_RAISE_SCRIPT, 1, cache.make_key(key), value)
        return int(stored) / _SCALE
    current = cache.get(key) or 0
    if value > int(current):
        cache.set(key, value, timeout=None)
        return value / _SCALE
    return int(current) / _SCALE


def margin_calibrate(*, model: str, estimated_tokens: int, reported_tokens: int) -> float:
    """Raise ``model``'s margin when the model counted more than the estimate allowed for.

    ``estimated_tokens`` is the raw estimate (no margin) of a request and ``reported_tokens``
    what the model billed for it (input plus cache read and creation tokens). The new margin
    keeps the initial headroom above the worst ratio seen, capped at MEMORY_TOKEN_MARGIN_MAX;
    a lower ratio changes nothing. Returns the margin now in force.
    """
    current = margin_get(model)
    if estimated_tokens <= 0 or reported_tokens <= 0:
        return current
    ratio = reported_tokens / estimated_tokens
    proposed = min(ratio * _initial_margin(), settings.MEMORY_TOKEN_MARGIN_MAX)
    if proposed <= current:
        return current
    try:
        raised = _margin_raise(model, proposed)
    except Exception:
        log.warning("memory.margin_unavailable", model=model)
        return current
    log.info("memory.margin_raised", model=model, margin=raised, ratio=round(ratio, 3))
    return max(current, min(raised, settings.MEMORY_TOKEN_MARGIN_MAX))
