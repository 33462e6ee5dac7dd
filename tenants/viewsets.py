"""The base of every tenant-owned API resource: scoping lives here and nowhere else."""

from rest_framework import viewsets

from tenants.selectors import TenantContext


class TenantScopedMixin:
    """Scopes ``get_queryset`` (and so ``get_object``) to the caller's organisation.

    Subclasses set ``queryset`` (or override ``get_base_queryset``) and, when the organisation
    is not a direct field, ``tenant_field`` (e.g. ``"conversation__organization"``). Another
    organisation's object is simply not in the queryset: a 404, never a 403.
    """

    tenant_field = "organization"

    @property
    def tenant(self) -> TenantContext:
        return self.request.auth

    def get_base_queryset(self):
        return super().get_queryset()

    def get_queryset(self):
        return self.get_base_queryset().filter(**{self.tenant_field: self.tenant.organization})


class TenantScopedViewSet(TenantScopedMixin, viewsets.GenericViewSet):
    pass


class TenantScopedModelViewSet(TenantScopedMixin, viewsets.ModelViewSet):
    pass
