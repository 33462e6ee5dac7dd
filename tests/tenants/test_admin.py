import pytest
from django.contrib.auth import get_user_model

from tenants.models import ApiKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456")
    client.force_login(user)
    return client


def test_admin_lists_organisations_and_keys_by_prefix_only(staff_client, alice):
    page = staff_client.get(f"/admin/tenants/organization/{alice.org.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    prefix = alice.admin_key.split("_")[1]
    assert prefix in html
    assert alice.admin_key.split("_", 2)[2] not in html
    assert staff_client.get("/admin/tenants/apikey/add/").status_code == 403


def test_admin_revoke_action(staff_client, alice):
    key = ApiKey.objects.get(prefix=alice.admin_key.split("_")[1])
    response = staff_client.post(
        "/admin/tenants/apikey/",
        {"action": "revoke_keys", "_selected_action": [key.pk]},
        follow=True,
    )
    assert response.status_code == 200
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert alice.client().get("/api/v1/me").status_code == 401
