"""The Django admin as operators use it, through the test client as a staff user: the prompt
list with active version and use count, Activate / Roll back with confirmation and reason (the
same services), the diff, the read-only activation log, stats columns and the compare page."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from prompts.models import Prompt, PromptActivation, PromptVersion
from prompts.selectors import prompt_active_for

from .conftest import add_assistant_message, make_conversation, make_prompt

pytestmark = pytest.mark.django_db


@pytest.fixture
def support(alice):
    prompt = make_prompt(
        alice.org,
        "support",
        ["Be brief.\nAlways polite.", "Be brief.\nAlways polite.\n<script>alert(1)</script>"],
        active=1,
    )
    conversation = make_conversation(alice, prompt_name="support")
    v1 = prompt.versions.get(version=1)
    for tokens in (100, 300):
        add_assistant_message(
            conversation, v1, input_tokens=tokens, output_tokens=10, latency_ms=50
        )
    add_assistant_message(conversation, v1, status="failed", error_code="overloaded")
    return prompt


def test_prompt_list_shows_active_version_and_its_use_count(staff_client, support):
    html = staff_client.get(reverse("admin:prompts_prompt_changelist")).content.decode()
    assert "support" in html
    assert "default-system-prompt" in html
    row = html[html.index(f"/admin/prompts/prompt/{support.pk}/change/") :].split("</tr>")[0]
    assert "v1" in row
    assert '<td class="field-active_uses">3</td>' in row


def test_change_page_has_versions_with_stats_buttons_and_the_log(staff_client, support):
    html = staff_client.get(
        reverse("admin:prompts_prompt_change", args=[support.pk])
    ).content.decode()
    html = re.sub(r">\s+<", "><", html)  # the inline spreads cells over lines
    assert reverse("admin:prompts_prompt_activate", args=[support.pk, 2]) in html
    assert reverse("admin:prompts_prompt_rollback", args=[support.pk]) in html
    assert reverse("admin:prompts_prompt_compare", args=[support.pk]) in html
    assert '<td class="field-error_rate"><p>33.3%</p></td>' in html
    assert '<td class="field-avg_input_tokens"><p>133.3</p></td>' in html
    assert "activation log" in html.lower()
    assert 'name="versions-0-is_active"' not in html  # never a checkbox


def test_activate_with_confirmation_and_reason(
    staff_client, alice, support, django_capture_on_commit_callbacks
):
    assert prompt_active_for(organization=alice.org, name="support").version == 1
    url = reverse("admin:prompts_prompt_activate", args=[support.pk, 2])
    page = staff_client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="reason"' in html
    assert 'class="diff"' in html  # side-by-side diff against the active version
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)</script>" not in html
    assert support.versions.get(is_active=True).version == 1  # GET changes nothing

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(url, {"reason": "add safety line"})
    assert response.status_code == 302
    assert support.versions.get(is_active=True).version == 2
    row = PromptActivation.objects.filter(prompt=support).order_by("-id").first()
    assert (row.from_version.version, row.to_version.version) == (1, 2)
    assert (row.actor, row.reason) == (staff_client.user, "add safety line")
    assert prompt_active_for(organization=alice.org, name="support").version == 2


def test_roll_back_with_confirmation(staff_client, support):
    url = reverse("admin:prompts_prompt_rollback", args=[support.pk])
    # Nothing to roll back to yet: back to the prompt with an error, nothing changed.
    response = staff_client.get(url, follow=True)
    assert "no previous version" in response.content.decode()
    staff_client.post(
        reverse("admin:prompts_prompt_activate", args=[support.pk, 2]), {"reason": ""}
    )
    page = staff_client.get(url)
    assert page.status_code == 200
    assert "Roll back support to v1" in page.content.decode()
    staff_client.post(url, {"reason": "complaints"})
    assert support.versions.get(is_active=True).version == 1
    row = PromptActivation.objects.filter(prompt=support).order_by("-id").first()
    assert (row.from_version.version, row.to_version.version, row.reason) == (2, 1, "complaints")


def test_staff_change_global_prompts_in_the_admin(staff_client, alice, bob):
    prompt = Prompt.objects.get(organization=None, name="default-system-prompt")
    response = staff_client.post(
        reverse("admin:prompts_promptversion_add"),
        {
            "prompt": prompt.pk,
            "content": "Hello {{organization_name}}, v2.",
            "variables": "[]",
            "model": "",
            "max_tokens": "",
            "note": "second",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    v2 = prompt.versions.get(version=2)
    assert (v2.variables, v2.created_by, v2.is_active) == (
        ["organization_name"],
        staff_client.user,
        False,
    )
    staff_client.post(
        reverse("admin:prompts_prompt_activate", args=[prompt.pk, 2]), {"reason": "x"}
    )
    assert prompt.versions.get(is_active=True).version == 2


def test_version_add_form_refuses_bad_templates(staff_client, support):
    response = staff_client.post(
        reverse("admin:prompts_promptversion_add"),
        {"prompt": support.pk, "content": "Hi {{nobody}}", "variables": "[]", "note": ""},
    )
    assert response.status_code == 200  # the form again, with the error
    assert "Unknown variable" in response.content.decode()
    assert support.versions.count() == 2


def test_version_page_shows_diff_against_active_and_used_versions_are_read_only(
    staff_client, support
):
    v1, v2 = support.versions.get(version=1), support.versions.get(version=2)
    html = staff_client.get(
        reverse("admin:prompts_promptversion_change", args=[v2.pk])
    ).content.decode()
    assert 'class="diff"' in html
    assert 'name="content"' in html  # an unused draft is editable
    assert 'name="is_active"' not in html
    html = staff_client.get(
        reverse("admin:prompts_promptversion_change", args=[v1.pk])
    ).content.decode()
    assert 'name="content"' not in html  # used (and active): immutable
    staff_client.post(
        reverse("admin:prompts_promptversion_change", args=[v1.pk]),
        {"note": "x", "content": "evil"},
    )
    v1.refresh_from_db()
    assert v1.content == "Be brief.\nAlways polite."


def test_version_list_has_stats_columns(staff_client, support):
    html = staff_client.get(reverse("admin:prompts_promptversion_changelist")).content.decode()
    assert '<td class="field-uses">3</td>' in html
    assert '<td class="field-error_rate">33.3%</td>' in html


def test_compare_page_shows_diff_and_stats(staff_client, support):
    url = reverse("admin:prompts_prompt_compare", args=[support.pk])
    html = staff_client.get(url, {"a": 1, "b": 2}).content.decode()
    assert 'class="diff"' in html
    assert "+&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the unified diff, escaped
    assert "<th>uses</th><td>3</td><td>0</td><td>-3</td>" in html.replace("\n", "")


def test_activation_log_is_read_only(staff_client, support):
    row = support.activations.first()
    assert staff_client.get(reverse("admin:prompts_promptactivation_add")).status_code == 403
    html = staff_client.get(
        reverse("admin:prompts_promptactivation_change", args=[row.pk])
    ).content.decode()
    assert 'name="reason"' not in html
    staff_client.post(
        reverse("admin:prompts_promptactivation_change", args=[row.pk]), {"reason": "edited"}
    )
    row.refresh_from_db()
    assert row.reason == "test setup"
    listing = staff_client.get(
        reverse("admin:prompts_promptactivation_changelist")
    ).content.decode()
    assert "test setup" in listing


def test_non_staff_cannot_reach_the_buttons(client, support):
    user = get_user_model().objects.create_user("plain", password="pw-123456")
    client.force_login(user)
    url = reverse("admin:prompts_prompt_activate", args=[support.pk, 2])
    assert client.post(url, {"reason": "x"}).status_code == 302  # to the admin login
    assert PromptVersion.objects.get(prompt=support, is_active=True).version == 1
