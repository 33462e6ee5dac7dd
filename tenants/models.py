"""Organisations (tenants), their members, and API keys (stored only as a hash)."""

import uuid

from django.conf import settings
from django.db import models


class Organization(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    # Per-organisation overrides of the RATE_LIMIT_* settings (tenants/ratelimit). Empty means
    # "use the default"; 0 means "no limit". "Per minute" is per RATE_LIMIT_WINDOW_SECONDS.
    rate_limit_requests_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="API calls per minute for the whole organisation."
    )
    rate_limit_user_requests_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="API calls per minute for each user of the organisation."
    )
    rate_limit_tokens_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Model tokens (input + output) per minute."
    )
    rate_limit_max_concurrent_streams = models.PositiveIntegerField(
        null=True, blank=True, help_text="Model generations in flight at once."
    )
    monthly_token_budget = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Model tokens per calendar month (UTC); 0 = no budget."
    )

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="uniq_membership"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"

    @property
    def is_admin(self) -> bool:
        return self.role == self.Role.ADMIN


class ApiKey(models.Model):
    """A key is ``llm_<prefix>_<secret>``; only the prefix (for lookup and display) and the
    SHA-256 of the whole key are stored. The full key is shown once, at creation."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="api_keys"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix} ({self.name or 'unnamed'})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
