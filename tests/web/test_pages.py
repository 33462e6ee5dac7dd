"""The chat page's server side: who may see it, login and logout, its security headers, its
assets, and the session + CSRF contract its JavaScript relies on to call the API."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders
from django.test import Client

from tests.web.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def logged_in_client(member, **kwargs) -> Client:
    client = Client(**kwargs)
    assert client.login(username=member.user.username, password=PASSWORD)
    return client


def test_anonymous_visitor_is_sent_to_the_login_page():
    response = Client().get("/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"


def test_login_page_renders_a_form_under_a_strict_policy():
    response = Client().get("/login/")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'name="username"' in body
    assert 'name="password"' in body
    assert "csrfmiddlewaretoken" in body
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy


def test_login_with_the_right_password_lands_on_the_chat(member):
    client = Client()
    response = client.post(
        "/login/", {"username": "dana", "password": PASSWORD, "next": "/"}, follow=False
    )
    assert response.status_code == 302
    assert response["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "/static/web/chat.js" in body
    assert "/static/web/markdown.js" in body
    assert "Acme" in body  # the organisation's name
    # The JavaScript reads this cookie to pass Django's CSRF check on API writes.
    assert page.cookies["csrftoken"].value
    assert "connect-src 'self' ws://testserver wss://testserver" in page["Content-Security-Policy"]


def test_login_with_a_wrong_password_is_refused(member):
    client = Client()
    response = client.post("/login/", {"username": "dana", "password": "nope"})
    assert response.status_code == 200
    assert "form-error" in response.content.decode()
    assert client.get("/").status_code == 302


def test_a_logged_in_user_visiting_login_is_sent_to_the_chat(member):
    response = logged_in_client(member).get("/login/")
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_logout_is_post_only_and_ends_the_session(member):
    client = logged_in_client(member)
    assert client.get("/logout/").status_code == 405  # a link on another site cannot log out
    response = client.post("/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert client.get("/").status_code == 302


def test_an_account_without_an_organisation_gets_an_explanation():
    user = get_user_model().objects.create_user(username="loner", password=PASSWORD)
    client = Client()
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 403
    assert "belongs to no organisation" in response.content.decode()


def test_the_chat_page_answers_get_only(member):
    assert logged_in_client(member).post("/").status_code == 405


def test_login_never_redirects_off_site(member):
    response = Client().post(
        "/login/", {"username": "dana", "password": PASSWORD, "next": "https://evil.example/"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/"


@pytest.mark.parametrize("name", ["web/chat.js", "web/markdown.js", "web/chat.css"])
def test_assets_are_served_from_the_app_itself(name):
    assert finders.find(name), f"{name} is not found by the static files finders"


def test_the_session_cookie_authenticates_the_api_with_csrf(member):
    client = logged_in_client(member, enforce_csrf_checks=True)
    client.get("/")  # sets the csrftoken cookie, as the page does
    token = client.cookies["csrftoken"].value

    refused = client.post("/api/v1/conversations", {}, content_type="application/json")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"]

    created = client.post(
        "/api/v1/conversations", {}, content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert created.status_code == 201, created.content
    conversation_id = created.json()["id"]
    renamed = client.patch(
        f"/api/v1/conversations/{conversation_id}",
        {"title": "Renamed"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert renamed.status_code == 200
    assert renamed.json()["title"] == "Renamed"
    listed = client.get("/api/v1/conversations").json()
    assert [c["title"] for c in listed["results"]] == ["Renamed"]
