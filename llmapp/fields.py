"""Serializer fields shared by the apps' APIs."""

from django.conf import settings
from rest_framework import serializers


class ModelNameField(serializers.CharField):
    """A model the app knows how to bill: a key of ``LLM_PRICING`` (extend it with
    ``LLM_PRICING_JSON``), or blank for "the default". Refused here, an unknown model is a
    clear 400 instead of an upstream refusal in the middle of a chat turn."""

    default_error_messages = {"unknown_model": "Unknown model {value!r}; known models: {known}."}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 100)
        kwargs.setdefault("allow_blank", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if value and value not in settings.LLM_PRICING:
            self.fail("unknown_model", value=value, known=", ".join(sorted(settings.LLM_PRICING)))
        return value
