"""Knobs that shape a reply: timing, length and injected faults.

Each knob can be set three ways; the first one found wins:

1. a directive inside the LAST user message, ``[[fake:NAME=VALUE]]`` (so a test can drive the
   fake end to end through the app, which forwards the user's text);
2. a request header ``x-fake-NAME: VALUE``;
3. the server's command-line default (``--ttft-ms``, ``--itl-ms``, ``--tokens``).

| name | effect |
| --- | --- |
| ``ttft-ms`` | delay before the first text delta (non-streaming: before the response) |
| ``itl-ms`` | delay between text deltas |
| ``tokens`` | length of the default reply, in tokens |
| ``status`` | answer this error status (with the matching error type) before any streaming |
| ``error-after`` | send ``event: error`` (overloaded_error) after N deltas, then end the stream |
| ``cut-after`` | drop the connection after N deltas, mid chunked body, with no ``message_stop``
  (the client's HTTP layer sees an incomplete body) |
| ``end-after`` | end the HTTP body cleanly after N deltas, with no ``message_delta`` or
  ``message_stop`` (the SDK raises nothing; its final message has ``stop_reason=None``) |
| ``stall-ms`` | pause N ms after the first delta |
| ``fail-first`` | the first K requests with this exact body answer 529, later ones succeed
  (a retry by the SDK sends the same body, so it counts as the same request) |
| ``context-window`` | refuse a prompt longer than this many tokens (default 200,000) |

Without streaming, ``error-after`` answers 529 and ``cut-after``/``end-after`` drop the
connection before any response; the delays add up (ttft + itl per delta + stall) before it.

An unknown directive name, a non-integer header or a negative value is a 400, so a typo cannot
quietly turn a fault test into a plain success.

Directives are stripped from the text the reply echoes and from summaries, but they are counted
in ``input_tokens``: they are part of what the client sent, and the real API bills every
character it is sent, so an estimator that counts the message text stays calibrated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

DIRECTIVE = re.compile(r"\[\[fake:([a-z-]+)=(-?\d+)\]\]")

_NAMES = (
    "ttft-ms",
    "itl-ms",
    "tokens",
    "status",
    "error-after",
    "cut-after",
    "end-after",
    "stall-ms",
    "fail-first",
    "context-window",
)


@dataclass(frozen=True)
class Knobs:
    ttft_ms: int = 0
    itl_ms: int = 0
    tokens: int = 40
    status: int | None = None
    error_after: int | None = None
    cut_after: int | None = None
    end_after: int | None = None
    stall_ms: int = 0
    fail_first: int = 0
    context_window: int = 200_000


def strip_directives(text: str) -> str:
    """The text without ``[[fake:...]]`` directives (and the spaces they leave)."""
    if "[[fake:" not in text:
        return text
    return re.sub(r"[ \t]{2,}", " ", DIRECTIVE.sub("", text)).strip()


def resolve(
    *, defaults: Knobs, headers: dict[str, str] | object, last_user_text: str
) -> tuple[Knobs, list[str]]:
    """Merge directives, ``x-fake-*`` headers and defaults. Returns (knobs, problems)."""
    found: dict[str, int] = {}
    problems: list[str] = []
    getter = getattr(headers, "get", None)
    for name in _NAMES:
        raw = getter(f"x-fake-{name}") if getter else None
        if raw is None:
            continue
        try:
            found[name] = int(raw)
        except ValueError:
            problems.append(f"header x-fake-{name} must be an integer")
    for name, value in DIRECTIVE.findall(last_user_text):
        if name in _NAMES:
            found[name] = int(value)
        else:  # a typo must not silently turn a fault test into a plain success
            problems.append(f"unknown directive [[fake:{name}=...]]")
    values = {f.name: getattr(defaults, f.name) for f in fields(Knobs)}
    for name, value in found.items():
        if value < 0:
            problems.append(f"fake knob {name} must not be negative")
            continue
        values[name.replace("-", "_")] = value
    return Knobs(**values), problems
