from django.contrib import admin, messages
from django.utils import timezone

from tenants.models import ApiKey, Membership, Organization


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


class ApiKeyInline(admin.TabularInline):
    """Keys are shown by prefix only; they are created with ``create_api_key``, never here."""

    model = ApiKey
    extra = 0
    can_delete = False
    fields = ["prefix", "name", "user", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]
    readonly_fields = ["id", "created_at"]
    inlines = [MembershipInline, ApiKeyInline]
    fieldsets = [
        (None, {"fields": ["id", "slug", "name", "created_at"]}),
        (
            "Rate limits and budget",
            {
                "description": (
                    "Empty: the server default (RATE_LIMIT_* settings). 0: no limit. "
                    "'Per minute' is per RATE_LIMIT_WINDOW_SECONDS. Changes apply from the "
                    "next request (WebSocket: the next connection)."
                ),
                "fields": [
                    "rate_limit_requests_per_minute",
                    "rate_limit_user_requests_per_minute",
                    "rate_limit_tokens_per_minute",
                    "rate_limit_max_concurrent_streams",
                    "monthly_token_budget",
                ],
            },
        ),
    ]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", "organization"]
    search_fields = ["user__username", "organization__slug"]
    autocomplete_fields = ["user", "organization"]


@admin.action(description="Revoke selected keys")
def revoke_keys(modeladmin, request, queryset):
    count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
    modeladmin.message_user(request, f"Revoked {count} key(s).", messages.SUCCESS)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "prefix",
        "name",
        "organization",
        "user",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["organization", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["prefix", "name", "user__username", "organization__slug"]
    fields = ["prefix", "name", "organization", "user", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    actions = [revoke_keys]

    def has_add_permission(self, request) -> bool:
        return False
