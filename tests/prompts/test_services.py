"""Services and the database rules: one active version (partial unique index), numbering,
activation log, no-op activation, rollback, immutability of used versions, the seeded prompt."""

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction

from llmapp.errors import ApiError
from prompts.models import Prompt, PromptActivation, PromptVersion
from prompts.selectors import prompt_active_for
from prompts.services import (
    prompt_activate,
    prompt_create,
    prompt_rollback,
    prompt_version_create,
    prompt_version_update,
)

from .conftest import add_assistant_message, make_conversation, make_prompt

pytestmark = pytest.mark.django_db


def test_seed_migration_creates_the_global_default_prompt_active(alice):
    # Run the data migration itself: back to 0001 (removes the seed), then forward again.
    call_command("migrate", "prompts", "0001", verbosity=0)
    assert not Prompt.objects.filter(name="default-system-prompt").exists()
    call_command("migrate", "prompts", verbosity=0)
    prompt = Prompt.objects.get(organization=None, name="default-system-prompt")
    version = prompt.versions.get()
    assert (version.version, version.is_active) == (1, True)
    assert version.variables == ["organization_name", "date"]
    log = prompt.activations.get()
    assert (log.from_version, log.to_version) == (None, version)
    active = prompt_active_for(organization=alice.org, name="default-system-prompt")
    assert active.version_id == version.pk
    assert alice.org.name in active.content
    assert "{{" not in active.content


def test_the_database_refuses_two_active_versions(alice):
    prompt = make_prompt(alice.org, "p", ["one", "two"], active=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        PromptVersion.objects.filter(prompt=prompt, version=2).update(is_active=True)


def test_the_database_refuses_empty_content(alice):
    prompt = make_prompt(alice.org, "p", ["one"])
    with pytest.raises(IntegrityError), transaction.atomic():
        PromptVersion.objects.create(prompt=prompt, version=2, content="")


def test_versions_are_numbered_and_activation_swaps_and_logs(alice):
    prompt = make_prompt(alice.org, "p", ["one", "two", "three"], active=1)
    assert list(prompt.versions.values_list("version", flat=True)) == [1, 2, 3]
    result = prompt_activate(prompt=prompt, version=3, actor=alice.admin.user, reason="try 3")
    assert result.changed
    assert list(prompt.versions.filter(is_active=True).values_list("version", flat=True)) == [3]
    row = prompt.activations.order_by("-id").first()
    assert (row.from_version.version, row.to_version.version) == (1, 3)
    assert (row.actor, row.reason) == (alice.admin.user, "try 3")


def test_activating_the_active_version_is_a_noop_without_a_log_row(alice):
    prompt = make_prompt(alice.org, "p", ["one", "two"], active=2)
    before = PromptActivation.objects.count()
    result = prompt_activate(prompt=prompt, version=2)
    assert not result.changed
    assert result.version.version == 2
    assert PromptActivation.objects.count() == before


def test_unknown_version_is_404(alice):
    prompt = make_prompt(alice.org, "p", ["one"])
    with pytest.raises(ApiError) as info:
        prompt_activate(prompt=prompt, version=9)
    assert (info.value.status_code, info.value.code) == (404, "version_not_found")


def test_rollback_returns_to_the_previous_version_and_toggles(alice):
    prompt = make_prompt(alice.org, "p", ["one", "two", "three"], active=1)
    prompt_activate(prompt=prompt, version=3)
    prompt_activate(prompt=prompt, version=2)
    assert prompt_rollback(prompt=prompt).version.version == 3
    assert prompt.activations.order_by("-id").first().reason == "rollback from v2"
    # The version active before 3 is now 2 again (the log says 2 -> 3).
    assert prompt_rollback(prompt=prompt, reason="undo").version.version == 2


def test_rollback_without_previous_version_is_409(alice):
    prompt = make_prompt(alice.org, "p", ["one"], active=1)
    with pytest.raises(ApiError) as info:
        prompt_rollback(prompt=prompt)
    assert (info.value.status_code, info.value.code) == (409, "no_previous_version")
    unactivated = make_prompt(alice.org, "q", ["one"], active=None)
    with pytest.raises(ApiError):
        prompt_rollback(prompt=unactivated)


def test_empty_content_and_bad_template_are_refused(alice):
    prompt = make_prompt(alice.org, "p", ["one"])
    for content in ["", "   \n"]:
        with pytest.raises(ApiError) as info:
            prompt_version_create(prompt=prompt, content=content)
        assert info.value.code == "empty_content"
    with pytest.raises(ApiError) as info:
        prompt_version_create(prompt=prompt, content="Hi {{user_name}}", variables=[])
    assert info.value.code == "template_undeclared_variable"
    assert prompt.versions.count() == 1


def test_a_used_version_is_immutable_and_a_draft_is_editable(alice):
    prompt = make_prompt(alice.org, "p", ["one", "draft"], active=1)
    draft = prompt.versions.get(version=2)
    edited = prompt_version_update(version=draft, content="draft, edited", note="typo")
    assert (edited.content, edited.note) == ("draft, edited", "typo")
    prompt_activate(prompt=prompt, version=2)
    with pytest.raises(ApiError) as info:  # active: a turn may be reading it
        prompt_version_update(version=draft, content="sneaky")
    assert info.value.code == "version_immutable"
    used = prompt.versions.get(version=1)
    add_assistant_message(make_conversation(alice, prompt_name="p"), used)
    with pytest.raises(ApiError) as info:
        prompt_version_update(version=used, content="rewrite history")
    assert (info.value.status_code, info.value.code) == (409, "version_immutable")
    used.refresh_from_db()
    assert used.content == "one"


def test_duplicate_name_in_the_same_scope_is_409_but_an_org_may_shadow_a_global(alice):
    make_prompt(alice.org, "p", ["one"])
    with pytest.raises(ApiError) as info:
        prompt_create(organization=alice.org, name="p")
    assert (info.value.status_code, info.value.code) == (409, "prompt_exists")
    own = prompt_create(organization=alice.org, name="default-system-prompt", content="Alice's own")
    assert own.versions.get().is_active
    assert prompt_active_for(organization=alice.org, name="default-system-prompt").content == (
        "Alice's own"
    )


def test_org_prompt_wins_over_global_and_unknown_name_falls_back(alice, bob):
    make_prompt(None, "shared", ["global text"])
    make_prompt(alice.org, "shared", ["alice text"])
    assert prompt_active_for(organization=alice.org, name="shared").content == "alice text"
    assert prompt_active_for(organization=bob.org, name="shared").content == "global text"
    fallback = prompt_active_for(organization=bob.org, name="nope")
    assert fallback.version_id is None
    assert fallback.content


def test_user_name_variable_is_rendered_for_the_turn_user(alice):
    make_prompt(alice.org, "hello", ["Talking to {{user_name}} of {{organization_name}}."])
    user = alice.member.user
    user.first_name, user.last_name = "Ada", "Lovelace"
    user.save()
    active = prompt_active_for(organization=alice.org, name="hello", user=user)
    assert active.content == f"Talking to Ada Lovelace of {alice.org.name}."
