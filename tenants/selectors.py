"""Reads for tenants: resolving an API key or a session user to a tenant context."""

import functools
import hmac
from dataclasses import dataclass

from django.db.models import OuterRef, QuerySet, Subquery

from tenants.models import ApiKey, Membership, Organization
from tenants.services import api_key_hash, api_key_split


@dataclass(frozen=True)
class TenantContext:
    """Who is calling: the organisation, user and membership (and the key, when one was used)."""

    organization: Organization
    user: object
    membership: Membership
    api_key: ApiKey | None = None

    @property
    def is_admin(self) -> bool:
        return self.membership.is_admin


@functools.cache
def _active_keys_with_membership() -> QuerySet[ApiKey]:
    """Unrevoked keys with their organisation and user, and the id, role and creation time of
    the membership they belong to: one query. Built once per process (building the three
    subquery annotations cost as much as running the query); each lookup filters a clone."""
    membership = Membership.objects.filter(
        organization_id=OuterRef("organization_id"), user_id=OuterRef("user_id")
    )
    return (
        ApiKey.objects.select_related("organization", "user")
        .annotate(
            membership_id=Subquery(membership.values("id")[:1]),
            membership_role=Subquery(membership.values("role")[:1]),
            membership_created_at=Subquery(membership.values("created_at")[:1]),
        )
        .filter(revoked_at__isnull=True)
    )


def tenant_from_api_key(raw_key: str) -> TenantContext | None:
    """The tenant of an active key, or None for a malformed, unknown or revoked one.

    Looked up by prefix, then the hash compared in constant time, so the lookup cost does not
    depend on how much of a guessed secret is right.
    """
    parts = api_key_split(raw_key)
    if parts is None:
        return None
    api_key = _active_keys_with_membership().filter(prefix=parts[0]).first()
    if api_key is None or not hmac.compare_digest(api_key.key_hash, api_key_hash(raw_key)):
        return None
    if not api_key.user.is_active or api_key.membership_id is None:
        return None
    membership = Membership(
        id=api_key.membership_id,
        organization=api_key.organization,
        user=api_key.user,
        role=api_key.membership_role,
        created_at=api_key.membership_created_at,
    )
    return TenantContext(
        organization=api_key.organization, user=api_key.user, membership=membership, api_key=api_key
    )


def tenant_from_user(user, *, org_id: str | None = None) -> TenantContext | None:
    """The tenant of a logged-in user: the organisation named by ``org_id``, else the first one."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    memberships = Membership.objects.select_related("organization").filter(user=user)
    if org_id:
        memberships = memberships.filter(organization_id=org_id)
    membership = memberships.order_by("created_at").first()
    if membership is None:
        return None
    membership.user = user
    return TenantContext(organization=membership.organization, user=user, membership=membership)
