from rest_framework.permissions import SAFE_METHODS, BasePermission

from tenants.selectors import TenantContext


class IsTenantMember(BasePermission):
    """Authenticated with a tenant (API key or session with a membership)."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, TenantContext)


class IsTenantAdminOrReadOnly(IsTenantMember):
    """Members read; organisation admins also write."""

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        return request.method in SAFE_METHODS or request.auth.is_admin
