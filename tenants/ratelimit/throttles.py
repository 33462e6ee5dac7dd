"""The DRF hook: every authenticated API call counts against the tenant's request limits."""

from rest_framework.throttling import BaseThrottle

from tenants.limits import request_admit_sync
from tenants.selectors import TenantContext


class TenantRateThrottle(BaseThrottle):
    """Admits the request or raises the 429 ``ApiError`` itself (rather than returning False),
    so the refusal carries its code, ``Retry-After`` and RateLimit fields. Unauthenticated
    calls are not counted here: authentication has already refused them."""

    def allow_request(self, request, view) -> bool:
        tenant = request.auth
        if isinstance(tenant, TenantContext):
            request_admit_sync(tenant=tenant)
        return True
