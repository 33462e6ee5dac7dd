import io
import logging

import pytest
from django.core.management import call_command
from django.utils import timezone

from tenants.models import ApiKey
from tenants.services import api_key_hash

pytestmark = pytest.mark.django_db


def test_me_answers_each_tenant_its_own_identity(tenants):
    for slug, tenant in tenants.items():
        response = tenant.client().get("/api/v1/me")
        assert response.status_code == 200
        body = response.json()
        assert body["organization"] == {
            "id": str(tenant.org.id),
            "slug": slug,
            "name": tenant.org.name,
        }
        assert body["user"]["username"] == f"{slug}-admin"
        assert body["role"] == "admin"
        member = tenant.client(admin=False).get("/api/v1/me").json()
        assert member["user"]["username"] == f"{slug}-member"
        assert member["role"] == "member"


def assert_unauthenticated(response, request_id=None):
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    error = response.json()["error"]
    assert error["code"] == "unauthenticated"
    assert error["message"]
    assert error["request_id"] == response["X-Request-ID"]
    if request_id:
        assert error["request_id"] == request_id


@pytest.mark.parametrize(
    "header",
    [
        None,  # missing
        "Bearer",  # no token
        "Basic dXNlcjpwYXNz",  # another scheme
        "Bearer a b",  # spaces
        "Bearer not-a-key",  # malformed
        "Bearer llm_abcdefghij_" + "x" * 43,  # well-formed, unknown
        "Bearer llm_short_secret",  # bad prefix length
        "Bearer " + "llm_" + "a" * 300,  # absurdly long
    ],
)
def test_bad_credentials_are_401_with_the_error_body(anon_client, alice, header):
    if header:
        anon_client.credentials(HTTP_AUTHORIZATION=header)
    assert_unauthenticated(anon_client.get("/api/v1/me", HTTP_X_REQUEST_ID="req-1"), "req-1")


def test_a_right_prefix_with_a_wrong_secret_is_401(anon_client, alice):
    prefix = alice.admin_key.split("_")[1]
    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer llm_{prefix}_wrong-secret")
    assert_unauthenticated(anon_client.get("/api/v1/me"))


def test_revoked_key_is_401(anon_client, alice):
    prefix = alice.admin_key.split("_")[1]
    call_command("revoke_api_key", prefix, stdout=io.StringIO())
    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {alice.admin_key}")
    assert_unauthenticated(anon_client.get("/api/v1/me"))
    # the member's key of the same organisation still works
    assert alice.client(admin=False).get("/api/v1/me").status_code == 200


def test_key_of_an_inactive_user_or_a_removed_member_is_401(alice):
    user = alice.member.user
    user.is_active = False
    user.save()
    assert_unauthenticated(alice.client(admin=False).get("/api/v1/me"))
    alice.admin.delete()
    assert_unauthenticated(alice.client().get("/api/v1/me"))


def test_keys_are_stored_only_as_a_hash(alice):
    stored = ApiKey.objects.get(prefix=alice.admin_key.split("_")[1])
    assert stored.key_hash == api_key_hash(alice.admin_key)
    assert alice.admin_key not in {stored.key_hash, stored.prefix, stored.name}
    secret = alice.admin_key.split("_", 2)[2]
    for value in ApiKey.objects.values_list("key_hash", "prefix", "name"):
        assert all(secret not in str(v) for v in value)


def test_last_used_at_is_written_at_most_once_per_resolution(alice, django_assert_num_queries):
    client = alice.client()
    client.get("/api/v1/me")
    key = ApiKey.objects.get(prefix=alice.admin_key.split("_")[1])
    first = key.last_used_at
    assert first is not None
    assert (timezone.now() - first).total_seconds() < 5
    # a second request within the resolution window performs no UPDATE
    with django_assert_num_queries(1) as ctx:  # the key with its organisation, user, membership
        client.get("/api/v1/me")
    assert not any("UPDATE" in q["sql"] for q in ctx.captured_queries)
    key.refresh_from_db()
    assert key.last_used_at == first


def test_create_api_key_creates_what_is_missing_and_prints_the_key_last(anon_client):
    out = io.StringIO()
    call_command(
        "create_api_key",
        "--org",
        "delta",
        "--user",
        "dora",
        "--role",
        "admin",
        "--name",
        "ci",
        stdout=out,
    )
    lines = out.getvalue().strip().splitlines()
    key = lines[-1]
    assert key.startswith("llm_")
    assert " " not in key
    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    body = anon_client.get("/api/v1/me").json()
    assert body["organization"]["slug"] == "delta"
    assert body["user"]["username"] == "dora"
    assert body["role"] == "admin"
    stored = ApiKey.objects.get(prefix=key.split("_")[1])
    assert stored.name == "ci"

    # a second run reuses the organisation and user and makes a second, different key
    out2 = io.StringIO()
    call_command("create_api_key", "--org", "delta", "--user", "dora", stdout=out2)
    assert out2.getvalue().strip().splitlines()[-1] != key
    assert ApiKey.objects.filter(organization__slug="delta").count() == 2


def test_no_log_line_contains_the_key(alice, caplog):
    caplog.set_level(logging.DEBUG)
    alice.client().get("/api/v1/me")
    bad = alice.admin_key[:-3] + "zzz"
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {bad}")
    client.get("/api/v1/me")
    secret = alice.admin_key.split("_", 2)[2]
    text = caplog.text + "".join(str(r.msg) for r in caplog.records)
    assert "http.request" in text  # the access log did run
    assert secret not in text
    assert bad.split("_", 2)[2] not in text
