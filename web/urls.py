"""Routes of the chat page; included at the site root (``path("", include("web.urls"))``)."""

from django.urls import path

from web import views

urlpatterns = [
    path("", views.chat_page, name="web-chat"),
    path("login/", views.ChatLoginView.as_view(), name="web-login"),
    path("logout/", views.ChatLogoutView.as_view(), name="web-logout"),
]
