"""Writes for tenants: organisations, memberships and API keys."""

import hashlib
import secrets
import string
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from tenants.models import ApiKey, Membership, Organization

KEY_SCHEME = "llm"
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
PREFIX_LENGTH = 10


def api_key_hash(raw_key: str) -> str:
    """SHA-256 of the whole key. Keys carry 190+ bits of randomness, so a slow hash adds nothing."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_split(raw_key: str) -> tuple[str, str] | None:
    """``llm_<prefix>_<secret>`` -> (prefix, secret), or None when the shape is wrong."""
    parts = raw_key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_SCHEME:
        return None
    prefix, secret = parts[1], parts[2]
    if len(prefix) != PREFIX_LENGTH or not secret or len(raw_key) > 200:
        return None
    return prefix, secret


@dataclass(frozen=True)
class CreatedKey:
    api_key: ApiKey
    raw_key: str


def api_key_create(*, organization: Organization, user, name: str = "") -> CreatedKey:
    """Create a key; the raw key is returned here once and never stored."""
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    raw_key = f"{KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(
        organization=organization,
        user=user,
        name=name,
        prefix=prefix,
        key_hash=api_key_hash(raw_key),
    )
    return CreatedKey(api_key=api_key, raw_key=raw_key)


def api_key_revoke(*, prefix: str) -> ApiKey:
    """Revoke a key by its prefix; revoking twice keeps the first revocation time."""
    api_key = ApiKey.objects.get(prefix=prefix)
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def api_key_touch(*, api_key: ApiKey, resolution_seconds: int) -> None:
    """Record use at most once per ``resolution_seconds``: not a database write per request."""
    now = timezone.now()
    if api_key.last_used_at and (now - api_key.last_used_at).total_seconds() < resolution_seconds:
        return
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now


@transaction.atomic
def tenant_member_ensure(
    *, org_slug: str, username: str, role: str | None = None, org_name: str | None = None
) -> Membership:
    """Create the organisation, user and membership when missing; set the role when given."""
    organization, _ = Organization.objects.get_or_create(
        slug=org_slug, defaults={"name": org_name or org_slug.replace("-", " ").title()}
    )
    user, _ = get_user_model().objects.get_or_create(username=username)
    membership, created = Membership.objects.get_or_create(
        organization=organization,
        user=user,
        defaults={"role": role or Membership.Role.MEMBER},
    )
    if not created and role and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    return membership
