"""Reads for memory, always given the tenant."""

import math

from django.conf import settings

from llmapp import llm
from memory.context import context_build
from memory.models import Summary
from prompts.selectors import prompt_active_for


def summary_list(*, conversation):
    """A conversation's summaries, oldest range first (``conversation`` is already scoped)."""
    return Summary.objects.filter(conversation=conversation).order_by("start_seq")


def context_preview(*, tenant, conversation) -> dict:
    """What the next turn would send, as of now, with its token accounting.

    The next user message is not known yet, so this is the context built from the stored
    messages; when the turn comes its message is appended and, if the budget is tight, the
    oldest window messages make room for it.
    """
    prompt = prompt_active_for(organization=tenant.organization, name=conversation.prompt_name)
    built = context_build(conversation=conversation, prompt=prompt)
    summary = None
    if built.summary is not None:
        summary = {
            "id": built.summary.id,
            "start_seq": built.summary.start_seq,
            "end_seq": built.summary.end_seq,
            "content": built.summary.content,
            "estimated_tokens": built.summary_tokens,
        }
    return {
        "conversation_id": conversation.pk,
        "model": built.model,
        "prompt": {"name": prompt.name, "version": prompt.version, "version_id": prompt.version_id},
        # As sent: the llm layer marks the last block (prompt, or summary) as the cached prefix.
        "system": llm.build_system(built.system),
        "summary": summary,
        "summary_dropped": built.summary_dropped,
        "messages": [
            {
                "role": message["role"],
                "content": message["content"],
                "seqs": seqs,
                "estimated_tokens": tokens,
                "truncated": built.truncated_seq in seqs,
            }
            for message, seqs, tokens in zip(
                built.messages, built.message_seqs, built.message_tokens, strict=True
            )
        ],
        "window_seqs": built.window_seqs,
        "tokens": {
            "system_prompt": built.system_tokens,
            "summary": built.summary_tokens,
            "messages": built.messages_tokens,
            "total": built.estimated_tokens,
            "total_with_margin": math.ceil(built.estimated_tokens * built.margin),
        },
        "budget": {
            "tokens": built.budget,
            "limit": built.limit,
            "margin": built.margin,
            "context_window": settings.LLM_CONTEXT_WINDOWS.get(
                built.model, settings.LLM_DEFAULT_CONTEXT_WINDOW
            ),
            "max_tokens": prompt.max_tokens,
        },
        "as_of": "now: the next user message is appended to this window when it is sent",
    }
