import pytest
from django.contrib.auth import get_user_model

from conversations.models import Message
from memory.models import Summary
from tests.conversations.conftest import new_conversation

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_superuser("ops", "ops@example.com", "pw-123456")
    client.force_login(user)
    return client


def test_the_admin_shows_a_conversations_messages_and_summaries(staff_client, alice):
    conversation = new_conversation(alice, title="Trip planning")
    for seq, role in [(1, "user"), (2, "assistant"), (3, "user"), (4, "assistant")]:
        Message.objects.create(
            conversation=conversation, seq=seq, role=role, content=f"message number {seq}"
        )
    Summary.objects.create(
        conversation=conversation, start_seq=1, end_seq=2, content="CITY=Lisbon", model="m"
    )
    page = staff_client.get(f"/admin/conversations/conversation/{conversation.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "CITY=Lisbon" in html
    assert "message number 4" in html
    listing = staff_client.get("/admin/conversations/conversation/?q=Trip")
    assert "Trip planning" in listing.content.decode()
    assert staff_client.get("/admin/conversations/conversation/add/").status_code == 403
    message = Message.objects.get(conversation=conversation, seq=1)
    assert staff_client.get(f"/admin/conversations/message/{message.pk}/change/").status_code == 200
