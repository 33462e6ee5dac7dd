from django.urls import path

from tenants.api import MeView

urlpatterns = [
    path("me", MeView.as_view(), name="me"),
]
