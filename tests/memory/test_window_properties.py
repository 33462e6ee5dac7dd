"""Property tests of the context builder's pure core (memory.window.context_assemble, which
context_build calls with what it read from the database), over 1,000 generated conversations:
lengths, unicode, code, very long single messages, failed and stopped replies, summaries.

The budget is checked by fake_anthropic's own token counter (the upstream's count, not ours).
"""

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fake_anthropic.tokens import count_request
from memory.tokens import estimate_message, estimate_request, estimate_system
from memory.window import (
    MIN_MESSAGE_TOKENS,
    OMITTED,
    SUMMARY_MARKER,
    SummaryRef,
    WindowRow,
    context_assemble,
    turns_from_rows,
)

WORDS = ["the", "model", "remembers", "QUOTA=17", "FACT: it rains.", "naïve", "日本語", "ß", "🙂"]
CODE = [
    "def f(x):\n    return x ** 2\n",
    "for (int i = 0; i < n; ++i) { a[i] += b[i]; }",
    "SELECT * FROM t WHERE id = 42;",
    "    \t\n\n",
    "{'a': [1, 2, 3]}",
]

prose = st.lists(st.sampled_from(WORDS), min_size=1, max_size=60).map(" ".join)
code = st.lists(st.sampled_from(CODE), min_size=1, max_size=20).map("".join)
unicode_text = st.text(min_size=0, max_size=400)
ascii_text = st.text(alphabet=string.printable, min_size=0, max_size=400)
long_text = st.builds(
    lambda unit, times: unit * times, st.sampled_from(WORDS + CODE), st.integers(100, 1500)
)
content = st.one_of(prose, code, unicode_text, ascii_text, long_text, st.just(""))
status = st.sampled_from(["complete", "complete", "complete", "failed", "stopped", "streaming"])


@st.composite
def conversations(draw):
    count = draw(st.integers(0, 40))
    start = draw(st.integers(1, 500))
    rows = []
    for i in range(count):
        role = draw(st.sampled_from(["user", "assistant"]))
        rows.append(WindowRow(start + i, role, draw(content), draw(status)))
    # context_build runs after the newest user message is stored (then, maybe, the streaming
    # placeholder of the reply).
    newest = draw(st.one_of(prose, unicode_text, long_text).filter(lambda t: t.strip()))
    rows.append(WindowRow(start + count, "user", newest, "complete"))
    if draw(st.booleans()):
        rows.append(WindowRow(start + count + 1, "assistant", "", "streaming"))
    summary = None
    if draw(st.booleans()) and start > 1:
        summary = SummaryRef(7, 1, start - 1, draw(st.one_of(prose, unicode_text, long_text)))
    prompt = draw(st.one_of(prose, code, st.just("You are a helpful assistant.")))
    floor = estimate_system([{"type": "text", "text": prompt}]) + MIN_MESSAGE_TOKENS
    budget = draw(st.one_of(st.integers(floor, floor + 400), st.integers(floor, 60_000)))
    return prompt, summary, rows, budget


def _eligible(rows):
    return [
        r
        for r in rows
        if r.content.strip() and not (r.role == "assistant" and r.status in ("failed", "streaming"))
    ]


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conversations())
def test_context_fits_the_budget_by_upstream_count_and_keeps_the_newest_verbatim(case):
    prompt, summary, rows, budget = case
    built = context_assemble(prompt_text=prompt, summary=summary, rows=rows, budget=budget)

    # Never over the budget, by our estimate and by the upstream's own count.
    assert built.estimated_tokens == estimate_request(built.system, built.messages)
    assert built.estimated_tokens <= budget
    assert count_request(built.system, built.messages) <= budget

    # Roles alternate, starting with the user and ending with the newest (user) turn.
    roles = [m["role"] for m in built.messages]
    assert roles[0] == "user"
    assert roles[-1] == "user"
    assert all(a != b for a, b in zip(roles, roles[1:], strict=False))
    assert all(m["content"].strip() for m in built.messages)

    # The window is a contiguous tail of the eligible messages, each one verbatim.
    eligible = _eligible(rows)
    by_seq = {r.seq: r for r in eligible}
    assert built.window_seqs == [r.seq for r in eligible][-len(built.window_seqs) :]
    newest = turns_from_rows(rows)[-1]
    for message, seqs in zip(built.messages, built.message_seqs, strict=True):
        original = "\n\n".join(by_seq[s].content for s in seqs)
        if seqs == newest.seqs and built.truncated_seq is not None:
            assert "characters omitted to fit the context window" in message["content"]
            head = message["content"].split(OMITTED.split("{n}")[0])[0]
            assert original.startswith(head)
        else:
            assert message["content"] == original
    assert built.message_seqs[-1] == newest.seqs
    if built.truncated_seq is not None:
        # Only a message that alone could not fit is cut.
        room = budget - built.system_tokens - built.summary_tokens
        assert estimate_message(newest.content) > room

    # The summary, when sent, is the last system block (the end of the cached prefix).
    if built.summary is not None:
        assert built.system[-1]["text"].startswith(SUMMARY_MARKER)
        assert built.summary_id == summary.id
    else:
        assert len(built.system) == 1
        assert summary is None or not summary.content.strip() or built.summary_dropped

    # Deterministic.
    again = context_assemble(prompt_text=prompt, summary=summary, rows=rows, budget=budget)
    assert again == built


@settings(max_examples=200, deadline=None)
@given(
    text=st.one_of(long_text, unicode_text.filter(str.strip)),
    room=st.integers(MIN_MESSAGE_TOKENS, 3000),
)
def test_truncation_keeps_both_ends_and_fits(text, room):
    from memory.window import truncate_middle

    cut = truncate_middle(text, room)
    assert cut is not None
    assert estimate_message(cut) <= room
    if cut != text:
        head, _, rest = cut.partition("\n\n[... ")
        tail = rest.split("...]\n\n", 1)[1]
        assert text.startswith(head)
        assert text.endswith(tail)
        assert f"{len(text) - len(head) - len(tail)} characters omitted" in cut
