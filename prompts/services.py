"""Writes for prompts: create, add a version, edit an unused draft, activate, roll back.

Every change of what a turn would be served ends with ``transaction.on_commit`` bumping the
prompt's cache epoch (prompts.cache), so the next turn in every process sees it and never before
the change is visible in the database.

Authorisation (who may change which prompt) is the caller's job: the API lets an organisation's
admins change its own prompts, the Django admin lets staff change any, global ones included.
"""

from dataclasses import dataclass

import structlog
from django.db import IntegrityError, transaction

from llmapp.errors import ApiError, Conflict, NotFound
from prompts import cache as prompt_cache
from prompts.models import Prompt, PromptActivation, PromptVersion
from prompts.selectors import prompt_previous_version
from prompts.templating import template_check

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ActivationResult:
    """The outcome of an activation or rollback; ``activation`` is None for a no-op."""

    prompt: Prompt
    version: PromptVersion
    activation: PromptActivation | None

    @property
    def changed(self) -> bool:
        return self.activation is not None


def _invalidate_after_commit(prompt: Prompt) -> None:
    organization_id, name = prompt.organization_id, prompt.name
    transaction.on_commit(lambda: prompt_cache.cache_invalidate(organization_id, name))


def _clean_content(content) -> str:
    if not isinstance(content, str) or not content.strip():
        raise ApiError("The prompt content must not be empty.", code="empty_content")
    return content


def prompt_create(
    *,
    organization,
    name: str,
    description: str = "",
    actor=None,
    content: str | None = None,
    model: str = "",
    max_tokens: int | None = None,
    note: str = "",
    variables: list[str] | None = None,
) -> Prompt:
    """Create the prompt ``name`` for ``organization`` (None: a global prompt).

    With ``content``, version 1 is created and activated in the same transaction. An
    organisation may create a prompt with a global prompt's name: its own then shadows the
    global one for its turns. A duplicate name within the scope is a 409 ``prompt_exists``.
    """
    if content is not None:
        content = _clean_content(content)
        variables = template_check(content, variables)
    with transaction.atomic():
        try:
            with transaction.atomic():
                prompt = Prompt.objects.create(
                    organization=organization, name=name, description=description
                )
        except IntegrityError:
            raise Conflict(
                f"A prompt named {name!r} already exists.", code="prompt_exists"
            ) from None
        if content is not None:
            prompt_version_create(
                prompt=prompt,
                content=content,
                model=model,
                max_tokens=max_tokens,
                note=note or "Initial version",
                variables=variables,
                actor=actor,
                activate=True,
                reason="created",
            )
        _invalidate_after_commit(prompt)
    log.info("prompt.created", prompt=name, organization=str(prompt.organization_id or "global"))
    return prompt


def prompt_version_create(
    *,
    prompt: Prompt,
    content: str,
    model: str = "",
    max_tokens: int | None = None,
    note: str = "",
    variables: list[str] | None = None,
    actor=None,
    activate: bool = False,
    reason: str = "",
) -> PromptVersion:
    """Add the next version (max + 1) of ``prompt``; with ``activate``, make it the active one.

    ``content`` must be non-empty (400 ``empty_content``) and its placeholders must match the
    declared ``variables`` (400, see prompts.templating; None declares what the content uses).
    The prompt row is locked so concurrent creators get distinct numbers.
    """
    content = _clean_content(content)
    variables = template_check(content, variables)
    with transaction.atomic():
        locked = Prompt.objects.select_for_update().get(pk=prompt.pk)
        last = locked.versions.order_by("-version").values_list("version", flat=True).first()
        version = PromptVersion.objects.create(
            prompt=locked,
            version=(last or 0) + 1,
            content=content,
            variables=variables,
            model=model or "",
            max_tokens=max_tokens,
            note=note or "",
            created_by=actor,
        )
        if activate:
            _activate_locked(locked, version, actor=actor, reason=reason)
    log.info("prompt.version_created", prompt=prompt.name, version=version.version)
    return version


def prompt_version_update(
    *,
    version: PromptVersion,
    content: str | None = None,
    model: str | None = None,
    max_tokens: int | None = None,
    note: str | None = None,
    variables: list[str] | None = None,
) -> PromptVersion:
    """Edit a draft: a version that no turn has used and that is not active.

    A used version is immutable (409 ``version_immutable``): the messages that recorded it must
    keep meaning what was sent. The active one is refused too, as a turn may be reading it right
    now; edits there make a new version.
    """
    from conversations.models import Message

    with transaction.atomic():
        # FOR UPDATE conflicts with the KEY SHARE lock a message insert takes on the version it
        # references, so a turn recording this version concurrently is either seen here or waits.
        locked = (
            PromptVersion.objects.select_for_update().select_related("prompt").get(pk=version.pk)
        )
        if locked.is_active or Message.objects.filter(prompt_version=locked).exists():
            raise Conflict(
                "This version is active or has been used by a turn; create a new version instead.",
                code="version_immutable",
            )
        if content is not None:
            locked.content = _clean_content(content)
        if variables is not None or content is not None:
            locked.variables = template_check(
                locked.content, variables if variables is not None else locked.variables
            )
        if model is not None:
            locked.model = model
        if max_tokens is not None:
            locked.max_tokens = max_tokens
        if note is not None:
            locked.note = note
        locked.save()
    return locked


def _activate_locked(
    prompt: Prompt, target: PromptVersion, *, actor, reason: str
) -> PromptActivation | None:
    """Swap the active version; the caller holds the prompt row lock inside a transaction.

    Deactivate first, then activate: the partial unique index allows one active row at any
    instant, and both updates commit together.
    """
    current = prompt.versions.filter(is_active=True).first()
    if current is not None and current.pk == target.pk:
        return None
    if current is not None:
        PromptVersion.objects.filter(pk=current.pk).update(is_active=False)
    PromptVersion.objects.filter(pk=target.pk).update(is_active=True)
    target.is_active = True
    activation = PromptActivation.objects.create(
        prompt=prompt, from_version=current, to_version=target, actor=actor, reason=reason or ""
    )
    _invalidate_after_commit(prompt)
    log.info(
        "prompt.activated",
        prompt=prompt.name,
        organization=str(prompt.organization_id or "global"),
        from_version=current.version if current else None,
        to_version=target.version,
    )
    return activation


def prompt_activate(
    *, prompt: Prompt, version: int, actor=None, reason: str = ""
) -> ActivationResult:
    """Make version number ``version`` of ``prompt`` the active one and log it.

    Locks the prompt row (``select_for_update``) so concurrent activations run one after the
    other and the activation log forms a chain (each row's ``from`` is the previous row's
    ``to``). Activating the already active version is a no-op: no log row, ``changed`` False.
    Unknown version: 404 ``version_not_found``.
    """
    with transaction.atomic():
        locked = Prompt.objects.select_for_update().get(pk=prompt.pk)
        target = locked.versions.filter(version=version).first()
        if target is None:
            raise NotFound(
                f"Prompt {prompt.name!r} has no version {version}.", code="version_not_found"
            )
        activation = _activate_locked(locked, target, actor=actor, reason=reason)
    return ActivationResult(prompt=locked, version=target, activation=activation)


def prompt_rollback(*, prompt: Prompt, actor=None, reason: str = "") -> ActivationResult:
    """Re-activate the version that was active before the current one (from the activation log).

    The previous version is the ``from`` of the latest activation that made the current version
    active; rolling back twice therefore toggles between the two. No active version, or one that
    was the first ever active (``from`` null): 409 ``no_previous_version``.
    """
    with transaction.atomic():
        locked = Prompt.objects.select_for_update().get(pk=prompt.pk)
        target = prompt_previous_version(prompt=locked)
        if target is None:
            raise Conflict(
                f"Prompt {prompt.name!r} has no previous version to roll back to.",
                code="no_previous_version",
            )
        current = locked.versions.get(is_active=True)
        activation = _activate_locked(
            locked, target, actor=actor, reason=reason or f"rollback from v{current.version}"
        )
    return ActivationResult(prompt=locked, version=target, activation=activation)
