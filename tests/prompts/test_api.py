"""The prompts REST API: every endpoint, its errors in the shared body, admin/member rights,
global prompts read-only, and tenant isolation (bob never sees or changes alice's prompts)."""

import pytest

from prompts.models import PromptActivation
from prompts.selectors import prompt_active_for

from .conftest import make_prompt

pytestmark = pytest.mark.django_db

BASE = "/api/v1/prompts"


def error_code(response) -> str:
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["request_id"]
    return body["error"]["code"]


@pytest.fixture
def alice_prompt(alice):
    return make_prompt(alice.org, "support", ["Be brief.", "Be very brief.", "Be kind."], active=1)


def test_list_shows_own_and_global_and_own_shadows_global(alice, bob, alice_prompt):
    make_prompt(alice.org, "default-system-prompt", ["Alice's default"], active=1)
    alice_list = alice.client(admin=False).get(BASE).json()["results"]
    assert [(p["name"], p["scope"]) for p in alice_list] == [
        ("default-system-prompt", "organization"),
        ("support", "organization"),
    ]
    assert alice_list[1]["active_version"]["content"] == "Be brief."
    assert alice_list[1]["editable"] is False  # a member
    bob_list = bob.client().get(BASE).json()["results"]
    assert [(p["name"], p["scope"], p["editable"]) for p in bob_list] == [
        ("default-system-prompt", "global", False)
    ]


def test_anonymous_is_401(anon_client):
    assert error_code(anon_client.get(BASE)) == "unauthenticated"


def test_create_prompt_with_first_version_active(alice):
    response = alice.client().post(
        BASE,
        {"name": "sales", "description": "d", "content": "Hello {{user_name}}", "max_tokens": 500},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["scope"] == "organization"
    assert body["editable"] is True
    assert body["active_version"]["version"] == 1
    assert body["active_version"]["variables"] == ["user_name"]
    assert body["active_version"]["created_by"] == "alice-admin"
    assert prompt_active_for(organization=alice.org, name="sales").max_tokens == 500


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"name": "Not a slug!"}, 400, "invalid_request"),
        ({"name": "x", "content": ""}, 400, "empty_content"),
        ({"name": "x", "content": "Hi {{nobody}}"}, 400, "template_unknown_variable"),
        (
            {"name": "x", "content": "Hi {{date}}", "variables": []},
            400,
            "template_undeclared_variable",
        ),
        ({"name": "x", "content": "Hi", "variables": ["date"]}, 400, "template_missing_variable"),
        ({"name": "x", "content": "Hi", "max_tokens": 0}, 400, "invalid_request"),
        ({"name": "support"}, 409, "prompt_exists"),
    ],
)
def test_create_errors(alice, alice_prompt, payload, status, code):
    response = alice.client().post(BASE, payload, format="json")
    assert response.status_code == status
    assert error_code(response) == code


def test_members_read_but_cannot_write(alice, alice_prompt):
    member = alice.client(admin=False)
    assert member.get(f"{BASE}/support").status_code == 200
    assert member.get(f"{BASE}/support/versions").status_code == 200
    for method, url, body in [
        ("post", BASE, {"name": "mine"}),
        ("post", f"{BASE}/support/versions", {"content": "x"}),
        ("put", f"{BASE}/support/activate/2", {}),
        ("post", f"{BASE}/support/rollback", {}),
    ]:
        response = getattr(member, method)(url, body, format="json")
        assert response.status_code == 403
        assert error_code(response) == "permission_denied"
    assert alice_prompt.versions.count() == 3
    assert alice_prompt.activations.count() == 1


def test_retrieve_and_versions(alice, alice_prompt):
    body = alice.client().get(f"{BASE}/support").json()
    assert body["active_version"]["version"] == 1
    versions = alice.client().get(f"{BASE}/support/versions").json()
    assert [v["version"] for v in versions["results"]] == [3, 2, 1]
    assert error_code(alice.client().get(f"{BASE}/nope")) == "prompt_not_found"


def test_add_version_and_activate_it_at_once(
    alice, alice_prompt, django_capture_on_commit_callbacks
):
    assert prompt_active_for(organization=alice.org, name="support").version == 1  # cached
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.client().post(
            f"{BASE}/support/versions",
            {"content": "Today is {{date}}.", "note": "dated", "activate": True, "reason": "ship"},
            format="json",
        )
    assert response.status_code == 201
    assert (response.json()["version"], response.json()["is_active"]) == (4, True)
    assert alice_prompt.activations.order_by("-id").first().reason == "ship"
    assert prompt_active_for(organization=alice.org, name="support").version == 4


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({}, "invalid_request"),
        ({"content": ""}, "empty_content"),
        ({"content": "{{date"}, "template_invalid"),
        (
            {"content": "{{ user_name }}", "variables": ["user_name", "date"]},
            "template_missing_variable",
        ),
    ],
)
def test_add_version_errors(alice, alice_prompt, payload, code):
    response = alice.client().post(f"{BASE}/support/versions", payload, format="json")
    assert response.status_code == 400
    assert error_code(response) == code
    assert alice_prompt.versions.count() == 3


def test_activate_then_noop_then_unknown(alice, alice_prompt, django_capture_on_commit_callbacks):
    assert prompt_active_for(organization=alice.org, name="support").version == 1
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.client().put(
            f"{BASE}/support/activate/3", {"reason": "kinder"}, format="json"
        )
    assert response.status_code == 200
    body = response.json()
    assert (body["version"], body["changed"]) == (3, True)
    assert body["activation"]["from_version"] == 1
    assert body["activation"]["reason"] == "kinder"
    assert body["activation"]["actor"] == "alice-admin"
    # The next turn uses v3.
    assert prompt_active_for(organization=alice.org, name="support").version == 3

    rows = PromptActivation.objects.count()
    again = alice.client().put(f"{BASE}/support/activate/3")  # no body at all
    assert again.status_code == 200
    assert (again.json()["changed"], again.json()["activation"]) == (False, None)
    assert PromptActivation.objects.count() == rows

    assert error_code(alice.client().put(f"{BASE}/support/activate/99")) == "version_not_found"
    assert alice.client().put(f"{BASE}/support/activate/x").status_code == 404
    assert error_code(alice.client().put(f"{BASE}/nope/activate/1")) == "prompt_not_found"


def test_rollback_and_409_without_previous(alice, alice_prompt):
    assert error_code(alice.client().post(f"{BASE}/support/rollback")) == "no_previous_version"
    alice.client().put(f"{BASE}/support/activate/2")
    response = alice.client().post(f"{BASE}/support/rollback", {"reason": "worse"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == 1
    assert (body["activation"]["from_version"], body["activation"]["to_version"]) == (2, 1)
    assert body["activation"]["reason"] == "worse"
    conflict = alice.client().post(f"{BASE}/unknown/rollback")
    assert conflict.status_code == 404


def test_global_prompt_is_read_only_for_org_admins(alice):
    client = alice.client()
    assert client.get(f"{BASE}/default-system-prompt").json()["scope"] == "global"
    assert client.get(f"{BASE}/default-system-prompt/versions").status_code == 200
    for method, url, body in [
        ("post", f"{BASE}/default-system-prompt/versions", {"content": "mine"}),
        ("put", f"{BASE}/default-system-prompt/activate/1", {}),
        ("post", f"{BASE}/default-system-prompt/rollback", {}),
    ]:
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code == 403
        assert error_code(response) == "global_prompt_read_only"
    # The way to customise it: the organisation's own prompt of that name.
    created = client.post(
        BASE, {"name": "default-system-prompt", "content": "Alice rules."}, format="json"
    )
    assert created.status_code == 201
    assert created.json()["scope"] == "organization"
    assert client.get(f"{BASE}/default-system-prompt").json()["active_version"]["content"] == (
        "Alice rules."
    )


def test_compare(alice, alice_prompt):
    response = alice.client().get(f"{BASE}/support/compare", {"a": 1, "b": 3})
    assert response.status_code == 200
    body = response.json()
    assert (body["a"]["version"], body["b"]["version"]) == (1, 3)
    assert "-Be brief." in body["diff"]
    assert "+Be kind." in body["diff"]
    assert body["stats_a"]["uses"] == 0
    assert body["delta"]["uses"] == 0
    for params, status, code in [
        ({"a": 1}, 400, "invalid_request"),
        ({"a": "x", "b": 1}, 400, "invalid_request"),
        ({"a": 0, "b": 1}, 400, "invalid_request"),
        ({"a": 1, "b": 9}, 404, "version_not_found"),
    ]:
        response = alice.client().get(f"{BASE}/support/compare", params)
        assert response.status_code == status
        assert error_code(response) == code


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/support", None),
        ("get", "/support/versions", None),
        ("post", "/support/versions", {"content": "bob was here"}),
        ("put", "/support/activate/2", {}),
        ("post", "/support/rollback", {}),
        ("get", "/support/stats", None),
        ("get", "/support/compare?a=1&b=2", None),
    ],
)
def test_another_organisation_gets_404_everywhere(
    alice, bob, charlie, alice_prompt, method, path, body
):
    for other in (bob, charlie):
        for admin in (True, False):
            response = getattr(other.client(admin=admin), method)(BASE + path, body, format="json")
            assert response.status_code == 404, (other.org.slug, admin, response.json())
            assert error_code(response) == "prompt_not_found"
    assert alice_prompt.versions.count() == 3
    assert list(alice_prompt.versions.filter(is_active=True).values_list("version", flat=True)) == [
        1
    ]
    assert alice_prompt.activations.count() == 1
    assert "support" not in [p["name"] for p in bob.client().get(BASE).json()["results"]]


def test_bob_creating_the_same_name_gets_his_own_prompt(alice, bob, alice_prompt):
    response = bob.client().post(BASE, {"name": "support", "content": "Bob's"}, format="json")
    assert response.status_code == 201
    assert prompt_active_for(organization=bob.org, name="support").content == "Bob's"
    assert prompt_active_for(organization=alice.org, name="support").content == "Be brief."


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("put", "/support/activate/99999999999999999999", {}, 404, "version_not_found"),
        ("get", "/support/compare?a=1&b=99999999999999999999", None, 404, "version_not_found"),
        ("put", "/support/activate/2", ["not", "an", "object"], 400, "invalid_request"),
        ("put", "/support/activate/2", {"reason": "x" * 501}, 400, "invalid_request"),
        (
            "post",
            "/support/versions",
            {"content": "ok", "variables": "date"},
            400,
            "invalid_request",
        ),
    ],
)
def test_odd_input_is_a_json_error_never_a_500(
    alice, alice_prompt, method, path, body, status, code
):
    response = getattr(alice.client(), method)(BASE + path, body, format="json")
    assert response.status_code == status, response.content
    assert error_code(response) == code


def test_malformed_json_is_400(alice, alice_prompt):
    response = alice.client().generic(
        "POST", f"{BASE}/support/versions", "{nope", content_type="application/json"
    )
    assert response.status_code == 400
    assert error_code(response) == "malformed_json"


def test_list_puts_own_prompts_before_global_ones(alice):
    make_prompt(alice.org, "zeta", ["z"])
    names = [(p["name"], p["scope"]) for p in alice.client().get(BASE).json()["results"]]
    assert names == [("zeta", "organization"), ("default-system-prompt", "global")]
