"""The context builder.

INTERFACE USED BY THE CHAT TURN (keep the signature): ``context_build``.
This first version sends every earlier message; the memory feature replaces the body with the
sliding window plus summary.
"""

from dataclasses import dataclass, field

from conversations.models import Message


@dataclass
class BuiltContext:
    system: list[dict]  # Messages API text blocks: the prompt, then the summary if any
    messages: list[dict]  # [{"role": "user"|"assistant", "content": str}], alternating, user last
    estimated_tokens: int = 0
    budget: int = 0
    summary_id: int | None = None
    window_seqs: list[int] = field(default_factory=list)


def context_build(*, conversation, prompt) -> BuiltContext:
    """Everything the next turn sends: ``prompt`` is a prompts.selectors.ActivePrompt.

    Must be called after the newest user message is stored; it is always the last message.
    """
    rows = list(
        Message.objects.filter(conversation=conversation)
        .exclude(role=Message.Role.ASSISTANT, content="")
        .order_by("seq")
        .values_list("seq", "role", "content")
    )
    messages: list[dict] = []
    seqs: list[int] = []
    for seq, role, content in rows:
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"] += "\n\n" + content
        else:
            messages.append({"role": role, "content": content})
        seqs.append(seq)
    while messages and messages[0]["role"] != "user":
        messages.pop(0)
    return BuiltContext(
        system=[{"type": "text", "text": prompt.content}], messages=messages, window_seqs=seqs
    )
