"""Output shapes of the memory API (documentation for drf-spectacular, and serialisation)."""

from rest_framework import serializers


class PromptRefOut(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.IntegerField(allow_null=True)
    version_id = serializers.IntegerField(allow_null=True)


class SummaryRefOut(serializers.Serializer):
    id = serializers.IntegerField()
    start_seq = serializers.IntegerField()
    end_seq = serializers.IntegerField()
    content = serializers.CharField()
    estimated_tokens = serializers.IntegerField()


class WindowMessageOut(serializers.Serializer):
    role = serializers.CharField()
    content = serializers.CharField()
    seqs = serializers.ListField(child=serializers.IntegerField())
    estimated_tokens = serializers.IntegerField()
    truncated = serializers.BooleanField()


class TokensOut(serializers.Serializer):
    system_prompt = serializers.IntegerField(help_text="Prompt block plus the request overhead.")
    summary = serializers.IntegerField()
    messages = serializers.IntegerField()
    total = serializers.IntegerField(help_text="Raw local estimate of the whole request.")
    total_with_margin = serializers.IntegerField()


class BudgetOut(serializers.Serializer):
    tokens = serializers.IntegerField(help_text="What the raw estimate must stay under.")
    limit = serializers.IntegerField(help_text="Real tokens the input may use.")
    margin = serializers.FloatField()
    context_window = serializers.IntegerField()
    max_tokens = serializers.IntegerField()


class ContextOut(serializers.Serializer):
    conversation_id = serializers.UUIDField()
    model = serializers.CharField()
    prompt = PromptRefOut()
    system = serializers.ListField(child=serializers.DictField())
    summary = SummaryRefOut(allow_null=True)
    summary_dropped = serializers.BooleanField()
    messages = WindowMessageOut(many=True)
    window_seqs = serializers.ListField(child=serializers.IntegerField())
    tokens = TokensOut()
    budget = BudgetOut()
    as_of = serializers.CharField()


class SummaryOut(serializers.Serializer):
    id = serializers.IntegerField()
    start_seq = serializers.IntegerField()
    end_seq = serializers.IntegerField()
    content = serializers.CharField()
    tokens_in = serializers.IntegerField()
    tokens_out = serializers.IntegerField()
    model = serializers.CharField()
    created_at = serializers.DateTimeField()
