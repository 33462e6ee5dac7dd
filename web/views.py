"""Views of the chat page: the page itself, login and logout.

The page is a shell; everything it shows comes from the REST API and the WebSocket, which the
session cookie authenticates. These views only decide who may see it and set the headers that
keep it safe (CSRF cookie for the JavaScript, a strict Content-Security-Policy).
"""

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse_lazy
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET

from tenants.authentication import SESSION_ORG_KEY
from tenants.selectors import tenant_from_user

LOGIN_URL = reverse_lazy("web-login")


def content_security_policy(request) -> str:
    """Only the app's own scripts, styles and sockets. Model text is rendered by our escaping
    Markdown renderer; this policy is the second wall should an injection ever slip through
    (no inline script, no foreign origin to load from or send to)."""
    host = request.get_host()
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src 'self' ws://{host} wss://{host}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def with_csp(response, request):
    response["Content-Security-Policy"] = content_security_policy(request)
    return response


@require_GET
@login_required(login_url=LOGIN_URL)
@ensure_csrf_cookie  # the JavaScript reads the csrftoken cookie for the API's CSRF check
def chat_page(request):
    """The single-page chat for a logged-in member of an organisation."""
    tenant = tenant_from_user(request.user, org_id=request.session.get(SESSION_ORG_KEY))
    if tenant is None:
        response = render(request, "web/no_organisation.html", status=403)
        return with_csp(response, request)
    context = {"organization": tenant.organization, "role": tenant.membership.role}
    return with_csp(render(request, "web/chat.html", context), request)


class ChatLoginView(auth_views.LoginView):
    template_name = "web/login.html"
    redirect_authenticated_user = True
    next_page = reverse_lazy("web-chat")

    def render_to_response(self, context, **response_kwargs):
        return with_csp(super().render_to_response(context, **response_kwargs), self.request)


class ChatLogoutView(auth_views.LogoutView):
    """POST only (Django 5): a link cannot log someone out from another site."""

    next_page = LOGIN_URL
