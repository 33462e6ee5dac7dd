"""Input serializers (strict: unknown fields are a 400) and output serializers of the chat API."""

from django.conf import settings
from rest_framework import serializers

from conversations.models import Conversation, Message
from llmapp.errors import ApiError
from llmapp.fields import ModelNameField
from llmapp.serializers import ReadOnlyFieldsOnceMixin


class StrictInputSerializer(serializers.Serializer):
    """Refuses fields it does not declare, so a typo (``"contnet"``) is a 400, not a silent no-op."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"non_field_errors": ["Expected a JSON object."]}, code="invalid"
            )
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {name: ["Unknown field."] for name in unknown}, code="unknown_field"
            )
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """A string, never a number or a boolean coerced into one."""

    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class ConversationCreateIn(StrictInputSerializer):
    title = serializers.CharField(max_length=200, required=False, allow_blank=True)
    prompt = serializers.SlugField(max_length=100, required=False)
    model = ModelNameField(required=False)


class ConversationUpdateIn(StrictInputSerializer):
    title = serializers.CharField(max_length=200, required=False, allow_blank=True)
    prompt = serializers.SlugField(max_length=100, required=False)
    model = ModelNameField(required=False)
    archived = serializers.BooleanField(required=False)


class ConversationOut(ReadOnlyFieldsOnceMixin, serializers.ModelSerializer):
    prompt = serializers.CharField(source="prompt_name")
    user = serializers.CharField(source="user.username")
    turn_in_progress = serializers.SerializerMethodField()

    class Meta:
        model = Conversation
        fields = [
            "id",
            "title",
            "prompt",
            "model",
            "user",
            "archived",
            "turn_in_progress",
            "created_at",
            "updated_at",
        ]

    def get_turn_in_progress(self, obj) -> bool:
        return obj.active_turn_id is not None


def validate_content(value: str) -> str:
    """Non-blank and at most CHAT_MAX_MESSAGE_CHARS; too long is its own status (413)."""
    if not isinstance(value, str) or not value.strip():
        raise ApiError("content: must be a non-empty string.", code="invalid_request", status=400)
    limit = settings.CHAT_MAX_MESSAGE_CHARS
    if len(value) > limit:
        raise ApiError(
            f"content: {len(value)} characters is over the limit of {limit}.",
            code="content_too_large",
            status=413,
            extra={"max_chars": limit},
        )
    return value


class TurnIn(StrictInputSerializer):
    # trim_whitespace off: the user's text is stored exactly as sent; blankness is checked apart.
    content = StrictCharField(trim_whitespace=False, allow_blank=True)
    stream = serializers.BooleanField(required=False, default=False)

    def validate_content(self, value: str) -> str:
        return validate_content(value)


class UsageOut(serializers.Serializer):
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cache_read_input_tokens = serializers.IntegerField()
    cache_creation_input_tokens = serializers.IntegerField()


class MessageOut(ReadOnlyFieldsOnceMixin, serializers.ModelSerializer):
    usage = serializers.SerializerMethodField()
    prompt_version = serializers.SerializerMethodField()
    cost_usd = serializers.DecimalField(max_digits=14, decimal_places=8, coerce_to_string=True)

    class Meta:
        model = Message
        fields = [
            "id",
            "conversation_id",
            "seq",
            "role",
            "content",
            "status",
            "stop_reason",
            "error_code",
            "usage",
            "cost_usd",
            "latency_ms",
            "ttft_ms",
            "model",
            "prompt_version",
            "request_id",
            "created_at",
        ]

    def get_usage(self, obj) -> dict:
        return {
            "input_tokens": obj.input_tokens,
            "output_tokens": obj.output_tokens,
            "cache_read_input_tokens": obj.cache_read_input_tokens,
            "cache_creation_input_tokens": obj.cache_creation_input_tokens,
        }

    def get_prompt_version(self, obj) -> dict | None:
        if obj.prompt_version_id is None:
            return None
        version = obj.prompt_version
        return {"id": version.pk, "name": version.prompt.name, "version": version.version}


class TurnOut(serializers.Serializer):
    user_message = MessageOut()
    assistant_message = MessageOut()


class UsageQueryIn(StrictInputSerializer):
    group_by = serializers.ChoiceField(
        choices=["day", "model", "user", "prompt_version"], required=False, default="day"
    )
    # ``from`` is a Python keyword: declared under another name and mapped in ``fields``.
    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("date_from")
        fields["to"] = fields.pop("date_to")
        return fields

    def validate(self, attrs):
        if attrs.get("from") and attrs.get("to") and attrs["from"] > attrs["to"]:
            raise serializers.ValidationError({"from": ["Must not be after 'to'."]})
        return attrs


class UsageTotalOut(serializers.Serializer):
    messages = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cache_read_input_tokens = serializers.IntegerField()
    cache_creation_input_tokens = serializers.IntegerField()
    cost_usd = serializers.DecimalField(max_digits=18, decimal_places=8, coerce_to_string=True)


class UsageRowOut(UsageTotalOut):
    """One group of the usage report: its key (day, model, user or prompt version id)."""

    key = serializers.CharField(allow_null=True)
    label = serializers.CharField(allow_null=True)


class UsageReportOut(serializers.Serializer):
    group_by = serializers.CharField()
    date_from = serializers.DateField(allow_null=True)
    date_to = serializers.DateField(allow_null=True)
    results = UsageRowOut(many=True)
    total = UsageTotalOut()

    def get_fields(self):
        # ``from`` is a Python keyword: declared under another name, shown as ``from``/``to``.
        fields = super().get_fields()
        fields["from"] = fields.pop("date_from")
        fields["to"] = fields.pop("date_to")
        return fields
