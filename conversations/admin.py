"""Conversations in the Django admin: read-only, for operators looking into a tenant's chats,
their token use and their memory (summaries)."""

from django.contrib import admin

from conversations.models import Conversation, Message
from memory.models import Summary


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class MessageInline(ReadOnlyInline):
    model = Message
    ordering = ["-seq"]
    fields = [
        "seq",
        "role",
        "status",
        "content",
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cost_usd",
        "latency_ms",
        "prompt_version",
        "error_code",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("prompt_version__prompt")


class SummaryInline(ReadOnlyInline):
    model = Summary
    ordering = ["-end_seq"]
    fields = ["start_seq", "end_seq", "content", "tokens_in", "tokens_out", "model", "created_at"]
    readonly_fields = fields


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "organization",
        "user",
        "prompt_name",
        "last_seq",
        "archived",
        "updated_at",
    ]
    list_filter = ["archived", "organization", "prompt_name"]
    search_fields = ["id", "title", "user__username", "organization__slug"]
    list_select_related = ["organization", "user"]
    readonly_fields = [
        "id",
        "organization",
        "user",
        "last_seq",
        "active_turn_id",
        "turn_started_at",
        "created_at",
        "updated_at",
    ]
    fields = [
        "id",
        "organization",
        "user",
        "title",
        "prompt_name",
        "model",
        "archived",
        *readonly_fields[3:],
    ]
    inlines = [SummaryInline, MessageInline]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = [
        "conversation",
        "seq",
        "role",
        "status",
        "model",
        "output_tokens",
        "cost_usd",
        "created_at",
    ]
    list_filter = ["role", "status", "model", "conversation__organization"]
    search_fields = ["conversation__id", "request_id"]
    list_select_related = ["conversation"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Message._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
