"""Reads for prompts.

INTERFACE USED BY THE CHAT TURN (keep the signature): ``prompt_active_for``.
"""

from dataclasses import dataclass

from django.conf import settings

from prompts.models import PromptVersion

FALLBACK_SYSTEM_PROMPT = "You are a helpful assistant."


@dataclass(frozen=True)
class ActivePrompt:
    """What a turn needs of its prompt: the text to send and what to record."""

    version_id: int | None
    name: str
    version: int | None
    content: str
    model: str
    max_tokens: int


def prompt_active_for(*, organization, name: str) -> ActivePrompt:
    """The active version of the organisation's prompt ``name``, else of the global one.

    Falls back to a built-in prompt (version_id None) when neither exists.
    """
    version = (
        PromptVersion.objects.select_related("prompt")
        .filter(prompt__name=name, is_active=True)
        .filter(prompt__organization__in=[organization])
        .first()
    ) or (
        PromptVersion.objects.select_related("prompt")
        .filter(prompt__name=name, is_active=True, prompt__organization__isnull=True)
        .first()
    )
    if version is None:
        return ActivePrompt(
            version_id=None,
            name=name,
            version=None,
            content=FALLBACK_SYSTEM_PROMPT,
            model=settings.LLM_DEFAULT_MODEL,
            max_tokens=settings.LLM_DEFAULT_MAX_TOKENS,
        )
    return ActivePrompt(
        version_id=version.pk,
        name=name,
        version=version.version,
        content=version.content,
        model=version.model or settings.LLM_DEFAULT_MODEL,
        max_tokens=version.max_tokens or settings.LLM_DEFAULT_MAX_TOKENS,
    )
