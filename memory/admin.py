"""Admin: summaries are read-only (written only by the summariser task). Filter the list by
conversation (``?conversation__id__exact=<uuid>``) to see one conversation's summaries."""

from django.contrib import admin

from memory.models import Summary


@admin.register(Summary)
class SummaryAdmin(admin.ModelAdmin):
    list_display = [
        "conversation",
        "start_seq",
        "end_seq",
        "tokens_in",
        "tokens_out",
        "model",
        "created_at",
    ]
    list_filter = ["model", "created_at"]
    search_fields = ["conversation__title"]
    list_select_related = ["conversation"]
    ordering = ["conversation", "-end_seq"]
    fields = [
        "conversation",
        "start_seq",
        "end_seq",
        "content",
        "tokens_in",
        "tokens_out",
        "model",
        "created_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
