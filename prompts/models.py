"""Versioned system prompts. At most one active version per prompt, enforced by a partial unique
index; every activation is logged."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class Prompt(models.Model):
    """A named system prompt. ``organization`` null: a global prompt every organisation inherits
    unless it has its own prompt of that name."""

    organization = models.ForeignKey(
        "tenants.Organization",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="prompts",
    )
    name = models.SlugField(max_length=100)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"],
                condition=Q(organization__isnull=False),
                name="uniq_prompt_name_per_org",
            ),
            models.UniqueConstraint(
                fields=["name"],
                condition=Q(organization__isnull=True),
                name="uniq_global_prompt_name",
            ),
        ]

    def __str__(self) -> str:
        owner = self.organization.slug if self.organization_id else "global"
        return f"{self.name} ({owner})"


class PromptVersion(models.Model):
    """One immutable-once-used text of a prompt. ``variables`` lists the ``{{placeholders}}`` the
    content uses (checked on save by prompts.templating); ``is_active`` is only ever changed by
    ``prompts.services.prompt_activate``."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    content = models.TextField()
    variables = models.JSONField(default=list, blank=True)
    model = models.CharField(max_length=100, blank=True)
    max_tokens = models.PositiveIntegerField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    is_active = models.BooleanField(default=False)

    class Meta:
        ordering = ["prompt", "version"]
        constraints = [
            models.UniqueConstraint(fields=["prompt", "version"], name="uniq_prompt_version"),
            models.UniqueConstraint(
                fields=["prompt"], condition=Q(is_active=True), name="one_active_version_per_prompt"
            ),
            models.CheckConstraint(
                condition=Q(version__gte=1), name="prompt_version_number_positive"
            ),
            # An empty system prompt is always a mistake; the API says 400 before this fires.
            models.CheckConstraint(
                condition=~Q(content=""), name="prompt_version_content_not_empty"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.prompt.name} v{self.version}"


class PromptActivation(models.Model):
    """The log of every change of active version (activation and rollback alike)."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="activations")
    from_version = models.ForeignKey(
        PromptVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    to_version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.prompt.name}: {self.from_version_id} -> {self.to_version_id}"
