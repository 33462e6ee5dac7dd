"""The global ``default-system-prompt``: seeded by migration 0002 and re-seedable (idempotent).

Takes an app registry so the migration can pass its historical models; tests that flush the
database (transactional tests) call ``seed_default_prompt(django.apps.apps)`` to restore it.
"""

NAME = "default-system-prompt"
CONTENT = """You are a helpful, knowledgeable assistant working for {{organization_name}}.

- Answer clearly and accurately. Lead with the answer, then the detail that supports it.
- When a question is ambiguous, ask one short clarifying question instead of guessing.
- If you do not know something or cannot verify it, say so plainly; never invent facts, \
sources or figures.
- Use Markdown for structure (lists, code blocks) when it helps; keep short answers short.
- Decline requests that are harmful or illegal, briefly and politely.

Today's date is {{date}}."""
VARIABLES = ["organization_name", "date"]


def seed_default_prompt(apps) -> None:
    """Create the global prompt with version 1 active and its activation row, unless present."""
    Prompt = apps.get_model("prompts", "Prompt")
    PromptVersion = apps.get_model("prompts", "PromptVersion")
    PromptActivation = apps.get_model("prompts", "PromptActivation")
    prompt, _ = Prompt.objects.get_or_create(
        organization=None,
        name=NAME,
        defaults={"description": "The system prompt every organisation inherits by default."},
    )
    if prompt.versions.exists():
        return
    version = PromptVersion.objects.create(
        prompt=prompt,
        version=1,
        content=CONTENT,
        variables=VARIABLES,
        note="Initial default system prompt",
        is_active=True,
    )
    PromptActivation.objects.create(
        prompt=prompt, from_version=None, to_version=version, reason="initial seed"
    )


def unseed_default_prompt(apps) -> None:
    Prompt = apps.get_model("prompts", "Prompt")
    PromptActivation = apps.get_model("prompts", "PromptActivation")
    PromptActivation.objects.filter(prompt__organization=None, prompt__name=NAME).delete()
    # Fails (PROTECT) if turns recorded the version: their messages must keep their prompt.
    Prompt.objects.filter(organization=None, name=NAME).delete()
