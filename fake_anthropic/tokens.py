"""The fake's own token counter.

There is no public tokenizer for current Claude models, so this one is made up, but on purpose
it is *not* ``len(text) / 4``: the app estimates tokens on its own and has to calibrate against
what the API reports, and this counter gives it something realistic to calibrate against.

Text is cut by ``_PIECE`` into pieces that never span whitespace, and each piece costs:

* an ASCII word (letters only): 1 token up to 6 letters, else ``ceil(len / 4)``
  ("cat" 1, "because" 2, "information" 3);
* a non-ASCII word: ``ceil(utf8_bytes / 3)``, so about one token per CJK character and one
  per 1.5 Cyrillic or Greek letters;
* a run of digits: one token per 3 digits ("2025" is 2);
* a run of one punctuation or symbol character repeated ("----", "=="): ``ceil(len / 4)``;
  any other punctuation or symbol: 1 token per character;
* a run of newlines: 1 token; a run of 2+ spaces or tabs (indentation): ``ceil(len / 4)``;
  single spaces are free (they ride on the next word).

English prose comes out at about one token per 4 characters; code, numbers and non-Latin
scripts cost noticeably more per character, as with real tokenizers.

A request's input adds fixed overheads: ``REQUEST_OVERHEAD`` once, ``SYSTEM_OVERHEAD`` when
there is a system prompt and ``MESSAGE_OVERHEAD`` per message (role markers). Output tokens are
the reply text counted the same way, with no overhead.
"""

from __future__ import annotations

import math
import re

REQUEST_OVERHEAD = 3
SYSTEM_OVERHEAD = 3
MESSAGE_OVERHEAD = 4

_PIECE = re.compile(
    r"(?P<word>[^\W\d_]+)"  # letters, any script
    r"|(?P<num>\d+)"
    r"|(?P<nl>[\r\n]+)"
    r"|(?P<indent>[ \t]{2,})"
    r"|(?P<space>\s)"
    r"|(?P<run>(?P<ch>[^\w\s])(?P=ch)+)"  # the same symbol repeated
    r"|(?P<sym>.)",  # any other single character: punctuation, symbols, "_"
    re.DOTALL,
)


def _piece_tokens(match: re.Match[str]) -> int:
    kind = match.lastgroup
    text = match.group(0)
    if kind == "word":
        if text.isascii():
            return 1 if len(text) <= 6 else math.ceil(len(text) / 4)
        return math.ceil(len(text.encode("utf-8")) / 3)
    if kind == "num":
        return math.ceil(len(text) / 3)
    if kind == "nl":
        return 1
    if kind in ("indent", "run"):
        return math.ceil(len(text) / 4)
    if kind == "space":
        return 0
    return 1  # "sym"


def count_text(text: str) -> int:
    """Tokens in a piece of text (no per-message overhead)."""
    return sum(_piece_tokens(m) for m in _PIECE.finditer(text))


def truncate_to_tokens(text: str, budget: int) -> str:
    """The longest prefix of ``text`` that costs at most ``budget`` tokens.

    A piece that does not fit whole (a long word, a number) is cut to the longest prefix that
    fits, so a cut reply uses the whole budget as the API would.
    """
    if budget <= 0:
        return ""
    used = 0
    for match in _PIECE.finditer(text):
        cost = _piece_tokens(match)
        if used + cost <= budget:
            used += cost
            continue
        remaining, piece = budget - used, match.group(0)
        for end in range(len(piece) - 1, 0, -1):
            if count_text(piece[:end]) <= remaining:
                return text[: match.start()] + piece[:end]
        return _without_free_tail(text[: match.start()])
    return text


def _without_free_tail(text: str) -> str:
    """Drop trailing spaces that cost nothing (a cut reply does not end in a blank)."""
    stripped = text.rstrip(" \t")
    return stripped if count_text(stripped) == count_text(text) else text


def block_text(block: object) -> str:
    """The text of a content block; non-text blocks were refused by validation."""
    if isinstance(block, dict):
        return str(block.get("text", ""))
    return ""


def content_text(content: object) -> str:
    """A message's content (a string or a list of text blocks) as one string."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(block_text(b) for b in content)
    return ""


def content_tokens(content: object) -> int:
    if isinstance(content, str):
        return count_text(content)
    if isinstance(content, list):
        return sum(count_text(block_text(b)) for b in content)
    return 0


def system_blocks(system: object) -> list[dict]:
    """``system`` as a list of text blocks (a string becomes one block)."""
    if system is None:
        return []
    if isinstance(system, str):
        return [{"type": "text", "text": system}] if system else []
    return [b for b in system if isinstance(b, dict)]


def count_request(system: object, messages: list[dict]) -> int:
    """All input tokens of a request: text plus the fixed overheads."""
    total = REQUEST_OVERHEAD
    blocks = system_blocks(system)
    if blocks:
        total += SYSTEM_OVERHEAD + sum(count_text(block_text(b)) for b in blocks)
    for message in messages:
        total += MESSAGE_OVERHEAD + content_tokens(message.get("content"))
    return total
