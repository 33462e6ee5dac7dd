"""The pure part of the context builder: from a prompt, an optional summary and the tail of the
conversation (already read), the exact request a turn sends. No database, no cache: the
property tests drive it with thousands of generated conversations.

Rules, in order of priority:

1. The system prompt is always sent (a prompt leaving no room for even a cut message is
   ``ContextTooLarge``, a 413).
2. The newest message is always sent. It is verbatim when it fits; a message that alone would
   exceed the budget has its middle replaced by a marker naming how many characters were left
   out (its start and end, where instructions usually sit, are kept). We chose this over a 413:
   the message is already stored, and a refusal would make the conversation unusable.
3. The summary (a system block starting with ``[[conversation-summary]]``, the LAST system block
   so it sits in the cached prefix) is sent when it fits beside the verbatim newest message (or,
   when that message must be cut anyway, when it takes at most half the room left); otherwise
   the context falls back to the window alone.
4. Older messages are added newest first while they fit; the first one that does not fit ends
   the window (no skipping: the window is always a contiguous tail).

Which messages count: empty (or whitespace-only) content is skipped (the API refuses it), and so
are assistant replies that failed or are still streaming; a ``stopped`` partial reply is kept.
Consecutive messages of the same role are merged (blank line between) so roles alternate, and a
window starting with an assistant message drops it (the Messages API wants ``user`` first).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from llmapp.errors import ApiError
from memory.tokens import (
    MESSAGE_OVERHEAD,
    PIECE,
    estimate_message,
    estimate_system,
    estimate_text,
    piece_tokens,
)

SUMMARY_MARKER = "[[conversation-summary]]"
OMITTED = "\n\n[... {n} characters omitted to fit the context window ...]\n\n"
_SKIPPED_ASSISTANT_STATUSES = {"failed", "streaming"}
_TRUNCATION_SLACK = 2  # joining head, marker and tail can merge two whitespace runs
# The least room the newest message needs: cut down to nothing but the marker.
MIN_MESSAGE_TOKENS = MESSAGE_OVERHEAD + _TRUNCATION_SLACK + estimate_text(OMITTED.format(n=10**15))


class ContextTooLarge(ApiError):
    status_code = 413
    default_code = "context_too_large"
    default_detail = "The system prompt alone exceeds the model's context budget."


@dataclass(frozen=True)
class WindowRow:
    """One stored message, as the builder needs it."""

    seq: int
    role: str
    content: str
    status: str = "complete"


@dataclass(frozen=True)
class SummaryRef:
    id: int | None
    start_seq: int
    end_seq: int
    content: str


@dataclass
class Turn:
    role: str
    content: str
    seqs: list[int]


@dataclass
class BuiltContext:
    system: list[dict]  # Messages API text blocks: the prompt, then the summary if any
    messages: list[dict]  # [{"role": "user"|"assistant", "content": str}], alternating, user last
    estimated_tokens: int = 0  # raw estimate of the whole request (no margin)
    budget: int = 0  # what estimated_tokens must stay under (the margin already taken off)
    summary_id: int | None = None
    window_seqs: list[int] = field(default_factory=list)
    # Added by the memory feature.
    model: str = ""
    margin: float = 1.0
    limit: int = 0  # real tokens the input may use (window - max_tokens, or the setting)
    summary: SummaryRef | None = None
    summary_dropped: bool = False  # a summary existed but did not fit beside the newest message
    summarised_through: int = 0  # end_seq of the latest summary, sent or not (0: none)
    message_seqs: list[list[int]] = field(default_factory=list)  # per message: seqs merged in it
    message_tokens: list[int] = field(default_factory=list)  # per message: raw estimate
    system_tokens: int = 0  # prompt block + request overhead
    summary_tokens: int = 0
    truncated_seq: int | None = None  # the newest message, when its middle was cut

    @property
    def messages_tokens(self) -> int:
        return sum(self.message_tokens)


def summary_block_text(summary: SummaryRef) -> str:
    """The system block carrying a summary; fake_anthropic recognises the marker line."""
    return (
        f"{SUMMARY_MARKER}\n"
        f"Summary of the earlier part of this conversation (messages {summary.start_seq}"
        f"-{summary.end_seq}); the messages after it follow verbatim.\n"
        f"{summary.content.strip()}"
    )


def turns_from_rows(rows: list[WindowRow]) -> list[Turn]:
    """Filter and merge stored messages (oldest first) into alternating turns."""
    turns: list[Turn] = []
    for row in rows:
        if not row.content.strip():
            continue
        if row.role == "assistant" and row.status in _SKIPPED_ASSISTANT_STATUSES:
            continue
        if turns and turns[-1].role == row.role:
            turns[-1].content += "\n\n" + row.content
            turns[-1].seqs.append(row.seq)
        else:
            turns.append(Turn(row.role, row.content, [row.seq]))
    return turns


class _Pieces:
    """Prefix sums of a text's estimate, so a cut's cost is found without re-reading it."""

    def __init__(self, text: str):
        self.text = text
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.cum = [0]
        for m in PIECE.finditer(text):
            self.starts.append(m.start())
            self.ends.append(m.end())
            self.cum.append(self.cum[-1] + piece_tokens(m.lastgroup or "sym", m.group(0)))

    def head(self, k: int) -> int:
        i = bisect.bisect_right(self.ends, k)
        cost = self.cum[i]
        if i < len(self.starts) and self.starts[i] < k:
            cost += estimate_text(self.text[self.starts[i] : k])
        return cost

    def tail(self, k: int) -> int:
        p = len(self.text) - k
        i = bisect.bisect_left(self.starts, p)
        cost = self.cum[-1] - self.cum[i]
        if i > 0 and self.ends[i - 1] > p:
            cost += estimate_text(self.text[p : self.ends[i - 1]])
        return cost


def _cut(text: str, keep: int) -> str:
    tail = keep // 2
    head = keep - tail
    return text[:head] + OMITTED.format(n=len(text) - keep) + text[len(text) - tail :]


def truncate_middle(text: str, max_tokens: int) -> str | None:
    """``text`` with its middle replaced by a marker so that, as a message, it costs at most
    ``max_tokens`` estimated tokens; None when even the marker alone does not fit."""
    if estimate_message(text) <= max_tokens:
        return text
    pieces = _Pieces(text)
    marker = estimate_text(OMITTED.format(n=len(text)))

    def fits(keep: int) -> bool:
        tail = keep // 2
        cost = pieces.head(keep - tail) + pieces.tail(tail) + marker + _TRUNCATION_SLACK
        return MESSAGE_OVERHEAD + cost <= max_tokens

    lo, hi = 0, len(text) - 1
    if not fits(0):
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    keep = lo
    result = _cut(text, keep)
    while estimate_message(result) > max_tokens and keep > 0:
        keep = keep * 9 // 10  # the cost model is an estimate of an estimate: make sure
        result = _cut(text, keep)
    return result if estimate_message(result) <= max_tokens else None


def context_assemble(
    *,
    prompt_text: str,
    summary: SummaryRef | None,
    rows: list[WindowRow],
    budget: int,
) -> BuiltContext:
    """The request for the next turn (see the module docstring). ``rows`` are the messages
    after the summary's range, oldest first; ``budget`` is in estimated tokens."""
    system = [{"type": "text", "text": prompt_text}]
    system_tokens = estimate_system(system)
    if system_tokens + MIN_MESSAGE_TOKENS > budget:
        raise ContextTooLarge()
    turns = turns_from_rows(rows)
    newest = turns[-1] if turns else None
    newest_tokens = estimate_message(newest.content) if newest else 0

    used = system_tokens
    summary_tokens = 0
    summary_dropped = False
    if summary is not None and summary.content.strip():
        block = {"type": "text", "text": summary_block_text(summary)}
        cost = estimate_system([*system, block]) - system_tokens
        room = budget - used
        # Kept when the newest message still fits verbatim beside it, or when that message
        # is cut anyway and the summary takes at most half the room.
        if cost + newest_tokens <= room or (newest_tokens > room and cost <= room // 2):
            system.append(block)
            summary_tokens = cost
            used += cost
        else:
            summary_dropped = True
    sent_summary = summary if summary_tokens else None

    chosen: list[Turn] = []
    costs: list[int] = []
    truncated_seq = None
    if newest is not None:
        content = newest.content
        if used + newest_tokens > budget:
            content = truncate_middle(content, budget - used)
            if content is None:  # unreachable: the prompt check left room for a message
                raise ContextTooLarge()
            truncated_seq = newest.seqs[-1]
        chosen.append(Turn(newest.role, content, newest.seqs))
        costs.append(estimate_message(content))
        used += costs[-1]
        for turn in reversed(turns[:-1]):
            cost = estimate_message(turn.content)
            if used + cost > budget:
                break
            chosen.append(turn)
            costs.append(cost)
            used += cost
        chosen.reverse()
        costs.reverse()
        if len(chosen) > 1 and chosen[0].role != "user":
            chosen.pop(0)
            used -= costs.pop(0)

    return BuiltContext(
        system=system,
        messages=[{"role": t.role, "content": t.content} for t in chosen],
        estimated_tokens=used,
        budget=budget,
        summary_id=sent_summary.id if sent_summary else None,
        window_seqs=[seq for t in chosen for seq in t.seqs],
        summary=sent_summary,
        summary_dropped=summary_dropped,
        message_seqs=[list(t.seqs) for t in chosen],
        message_tokens=costs,
        system_tokens=system_tokens,
        summary_tokens=summary_tokens,
        truncated_seq=truncated_seq,
    )
