"""Input and output shapes of the prompts API."""

from rest_framework import serializers

from llmapp.fields import ModelNameField

MAX_TOKENS_LIMIT = 128_000


class _VersionFieldsIn(serializers.Serializer):
    # Not trimmed and blank allowed: the service answers an empty text with its own
    # ``empty_content`` code, and whitespace is part of a prompt.
    content = serializers.CharField(trim_whitespace=False, allow_blank=True)
    model = ModelNameField(required=False, default="")
    max_tokens = serializers.IntegerField(
        min_value=1, max_value=MAX_TOKENS_LIMIT, required=False, allow_null=True, default=None
    )
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    variables = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, allow_null=True, default=None
    )


class PromptCreateIn(_VersionFieldsIn):
    name = serializers.SlugField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    content = serializers.CharField(
        trim_whitespace=False, allow_blank=True, required=False, allow_null=True, default=None
    )


class VersionCreateIn(_VersionFieldsIn):
    activate = serializers.BooleanField(required=False, default=False)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class ReasonIn(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class VersionOut(serializers.Serializer):
    version = serializers.IntegerField()
    content = serializers.CharField()
    variables = serializers.ListField(child=serializers.CharField())
    model = serializers.CharField()
    max_tokens = serializers.IntegerField(allow_null=True)
    note = serializers.CharField()
    is_active = serializers.BooleanField()
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)
    created_at = serializers.DateTimeField()


class PromptOut(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    scope = serializers.SerializerMethodField()
    editable = serializers.SerializerMethodField()
    active_version = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_scope(self, prompt) -> str:
        return "organization" if prompt.organization_id else "global"

    def get_editable(self, prompt) -> bool:
        """Whether the caller may change it through the API (its organisation's, and an admin)."""
        tenant = self.context["tenant"]
        return prompt.organization_id == tenant.organization.pk and tenant.is_admin

    def get_active_version(self, prompt) -> dict | None:
        active = getattr(prompt, "active_versions", None)
        if active is None:
            active = list(prompt.versions.filter(is_active=True))
        return VersionOut(active[0]).data if active else None


class ActivationOut(serializers.Serializer):
    id = serializers.IntegerField()
    from_version = serializers.IntegerField(
        source="from_version.version", default=None, allow_null=True
    )
    to_version = serializers.IntegerField(source="to_version.version")
    actor = serializers.CharField(source="actor.username", default=None, allow_null=True)
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()


class ActivationResultOut(serializers.Serializer):
    prompt = serializers.CharField(source="prompt.name")
    version = serializers.IntegerField(source="version.version")
    changed = serializers.BooleanField()
    activation = ActivationOut(allow_null=True)


class VersionStatsOut(serializers.Serializer):
    version = serializers.IntegerField()
    is_active = serializers.BooleanField()
    uses = serializers.IntegerField()
    failed = serializers.IntegerField()
    avg_input_tokens = serializers.FloatField(allow_null=True)
    avg_output_tokens = serializers.FloatField(allow_null=True)
    avg_latency_ms = serializers.FloatField(allow_null=True)
    error_rate = serializers.FloatField(allow_null=True)
    first_used_at = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)


class StatsOut(serializers.Serializer):
    prompt = serializers.CharField()
    scope = serializers.CharField()
    versions = VersionStatsOut(many=True)


class StatsDeltaOut(serializers.Serializer):
    uses = serializers.FloatField(allow_null=True)
    avg_input_tokens = serializers.FloatField(allow_null=True)
    avg_output_tokens = serializers.FloatField(allow_null=True)
    avg_latency_ms = serializers.FloatField(allow_null=True)
    error_rate = serializers.FloatField(allow_null=True)


class CompareOut(serializers.Serializer):
    prompt = serializers.CharField()
    a = VersionOut()
    b = VersionOut()
    stats_a = VersionStatsOut()
    stats_b = VersionStatsOut()
    delta = StatsDeltaOut(help_text="b minus a for each figure (null when either is null)")
    diff = serializers.CharField(help_text="unified diff from a to b")
