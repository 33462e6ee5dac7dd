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
