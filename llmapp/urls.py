from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve as serve_static
from django_prometheus.exports import ExportToDjangoView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from llmapp import health
from llmapp.errors import handler404 as api_not_found

handler404 = "llmapp.errors.handler404"
handler500 = "llmapp.errors.handler500"

api_v1 = [
    path("", include("tenants.urls")),
    path("", include("conversations.urls")),
    path("", include("prompts.urls")),
    path("", include("memory.urls")),
]

urlpatterns = [
    path("health", health.health, name="health"),
    path("health/ready", health.ready, name="health-ready"),
    path("metrics", ExportToDjangoView, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("", include("web.urls")),
    # An unknown API path is a JSON 404 in debug too (Django's debug 404 page is HTML).
    re_path(r"^api/", api_not_found),
]

if not settings.DEBUG:
    # Admin and API-docs assets (collected by `collectstatic`). In debug, runserver serves them.
    urlpatterns.insert(
        0, re_path(r"^static/(?P<path>.*)$", serve_static, {"document_root": settings.STATIC_ROOT})
    )
