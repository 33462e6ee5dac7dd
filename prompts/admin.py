"""The operators' tool: prompts with their active version and usage, versions with stats and a
diff against the active one, Activate / Roll back buttons with a confirmation and a reason (the
same services as the API), the read-only activation log, and a compare page.

``is_active`` is never a form field: the only way to change it is ``prompt_activate`` /
``prompt_rollback``, which lock the prompt and log the change.
"""

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from llmapp.errors import ApiError
from prompts import admin_views, selectors, services
from prompts.models import Prompt, PromptActivation, PromptVersion
from prompts.templating import template_check


def _fmt(value, suffix: str = "") -> str:
    return "–" if value is None else f"{value:.1f}{suffix}"


def _error_rate(obj) -> str:
    uses = getattr(obj, "stat_uses", 0)
    return "–" if not uses else f"{obj.stat_failed / uses:.1%}"


class VersionStatsColumns:
    """Stats columns shared by the version inline and the version list (``versions_annotate_stats``)."""

    @admin.display(description="uses", ordering="stat_uses")
    def uses(self, obj):
        return obj.stat_uses

    @admin.display(description="error rate")
    def error_rate(self, obj):
        return _error_rate(obj)

    @admin.display(description="avg in tok")
    def avg_input_tokens(self, obj):
        return _fmt(obj.stat_avg_input_tokens)

    @admin.display(description="avg out tok")
    def avg_output_tokens(self, obj):
        return _fmt(obj.stat_avg_output_tokens)

    @admin.display(description="avg latency")
    def avg_latency(self, obj):
        return _fmt(obj.stat_avg_latency_ms, " ms")

    @admin.display(description="last used")
    def last_used(self, obj):
        return obj.stat_last_used_at or "–"


class PromptVersionInline(VersionStatsColumns, admin.TabularInline):
    model = PromptVersion
    extra = 0
    can_delete = False
    show_change_link = True
    fields = [
        "version",
        "is_active",
        "note",
        "model",
        "uses",
        "error_rate",
        "avg_input_tokens",
        "avg_output_tokens",
        "avg_latency",
        "last_used",
        "buttons",
    ]
    readonly_fields = fields
    ordering = ["-version"]

    def get_queryset(self, request):
        return selectors.versions_annotate_stats(super().get_queryset(request))

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # versions are added on their own page, through the service

    @admin.display(description="")
    def buttons(self, obj):
        if obj.is_active:
            return "active"
        activate = reverse("admin:prompts_prompt_activate", args=[obj.prompt_id, obj.version])
        active = obj.prompt.versions.filter(is_active=True).values_list("version", flat=True)
        compare = reverse("admin:prompts_prompt_compare", args=[obj.prompt_id])
        return format_html(
            '<a class="button" href="{}">Activate</a> <a href="{}?a={}&amp;b={}">Diff vs active</a>',
            activate,
            compare,
            active.first() or obj.version,
            obj.version,
        )


class PromptActivationInline(admin.TabularInline):
    model = PromptActivation
    extra = 0
    can_delete = False
    fields = ["created_at", "from_version", "to_version", "actor", "reason"]
    readonly_fields = fields
    ordering = ["-id"]
    verbose_name = "activation"
    verbose_name_plural = "activation log"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["name", "scope", "active_version", "active_uses", "version_count", "created_at"]
    list_filter = [("organization", admin.EmptyFieldListFilter), "organization"]
    search_fields = ["name", "organization__slug"]
    inlines = [PromptVersionInline, PromptActivationInline]
    readonly_fields = ["created_at"]

    def get_readonly_fields(self, request, obj=None):
        # Renaming would orphan conversations that name the prompt and the cache keys.
        return ["organization", "name", "created_at"] if obj else ["created_at"]

    def get_queryset(self, request):
        from conversations.models import Message

        active = PromptVersion.objects.filter(prompt=OuterRef("pk"), is_active=True)
        active_uses = (
            Message.objects.filter(
                role="assistant",
                prompt_version__prompt=OuterRef("pk"),
                prompt_version__is_active=True,
            )
            .order_by()
            .values("prompt_version")
            .annotate(n=Count("id"))
            .values("n")[:1]
        )
        return (
            super()
            .get_queryset(request)
            .select_related("organization")
            .annotate(
                active_number=Subquery(active.values("version")[:1]),
                active_uses_count=Coalesce(
                    Subquery(active_uses, output_field=IntegerField()), Value(0)
                ),
                versions_count=Count("versions", distinct=True),
            )
        )

    @admin.display(description="scope", ordering="organization__slug")
    def scope(self, obj):
        return obj.organization.slug if obj.organization_id else "global"

    @admin.display(description="active version", ordering="active_number")
    def active_version(self, obj):
        return f"v{obj.active_number}" if obj.active_number else "–"

    @admin.display(description="uses of active", ordering="active_uses_count")
    def active_uses(self, obj):
        return obj.active_uses_count

    @admin.display(description="versions", ordering="versions_count")
    def version_count(self, obj):
        return obj.versions_count

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["description"])
            return
        created = services.prompt_create(
            organization=obj.organization, name=obj.name, description=obj.description
        )
        obj.pk, obj.created_at = created.pk, created.created_at

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # turns reference versions; retire a prompt by activating another text

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/activate/<int:version>/",
                view(admin_views.activate_view(self)),
                name="prompts_prompt_activate",
            ),
            path(
                "<path:object_id>/rollback/",
                view(admin_views.rollback_view(self)),
                name="prompts_prompt_rollback",
            ),
            path(
                "<path:object_id>/compare/",
                view(admin_views.compare_view(self)),
                name="prompts_prompt_compare",
            ),
            *super().get_urls(),
        ]


class PromptVersionForm(forms.ModelForm):
    class Meta:
        model = PromptVersion
        fields = ["prompt", "content", "variables", "model", "max_tokens", "note"]
        help_texts = {
            "variables": mark_safe(
                "JSON list of the <code>{{variables}}</code> the content uses; leave "
                "<code>[]</code> to declare exactly those it uses."
            )
        }

    def clean(self):
        data = super().clean()
        content = data.get("content")
        if content is not None:
            try:
                if not content.strip():
                    raise ApiError("The prompt content must not be empty.")
                data["variables"] = template_check(content, data.get("variables") or None)
            except ApiError as error:
                raise forms.ValidationError(str(error.detail), code=error.code) from None
        return data


@admin.register(PromptVersion)
class PromptVersionAdmin(VersionStatsColumns, admin.ModelAdmin):
    form = PromptVersionForm
    list_display = [
        "__str__",
        "scope",
        "is_active",
        "uses",
        "error_rate",
        "avg_input_tokens",
        "avg_output_tokens",
        "avg_latency",
        "last_used",
        "created_at",
        "created_by",
    ]
    list_filter = ["is_active", ("prompt__organization", admin.EmptyFieldListFilter)]
    search_fields = ["prompt__name", "note"]
    list_select_related = ["prompt__organization", "created_by"]

    def get_queryset(self, request):
        return selectors.versions_annotate_stats(super().get_queryset(request))

    def get_readonly_fields(self, request, obj=None):
        always = ["version", "is_active", "created_by", "created_at", "diff_against_active"]
        if obj is None:
            return always
        if obj.is_active or selectors.prompt_version_is_used(version=obj):
            return ["prompt", "content", "variables", "model", "max_tokens", "note", *always]
        return ["prompt", *always]

    def get_fields(self, request, obj=None):
        fields = ["prompt", "content", "variables", "model", "max_tokens", "note"]
        if obj is None:
            return fields
        return [*fields, "version", "is_active", "created_by", "created_at", "diff_against_active"]

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        prompt_id = request.GET.get("prompt")
        active = PromptVersion.objects.filter(prompt_id=prompt_id, is_active=True).first()
        if prompt_id and active is not None:
            # A new version starts as a copy of the active one: edits make a new version.
            initial.update(content=active.content, variables=active.variables, model=active.model)
        return initial

    @admin.display(description="scope")
    def scope(self, obj):
        return obj.prompt.organization.slug if obj.prompt.organization_id else "global"

    @admin.display(description="diff against the active version")
    def diff_against_active(self, obj):
        active = obj.prompt.versions.filter(is_active=True).first()
        if active is None or active.pk == obj.pk:
            return "This is the active version." if obj.is_active else "No active version."
        return mark_safe(selectors.version_html_diff(active, obj))  # noqa: S308 (escaped by difflib)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            if not form.changed_data:
                return  # a used or active version has no editable field: nothing to do
            try:
                services.prompt_version_update(
                    version=obj,
                    content=data.get("content"),
                    model=data.get("model"),
                    max_tokens=data.get("max_tokens"),
                    note=data.get("note"),
                    variables=data.get("variables"),
                )
            except ApiError as error:  # it was used or activated since the form was shown
                messages.error(request, str(error.detail))
            return
        created = services.prompt_version_create(
            prompt=data["prompt"],
            content=data["content"],
            model=data.get("model") or "",
            max_tokens=data.get("max_tokens"),
            note=data.get("note") or "",
            variables=data.get("variables"),
            actor=request.user,
        )
        obj.pk, obj.version, obj.created_at = created.pk, created.version, created.created_at

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PromptActivation)
class PromptActivationAdmin(admin.ModelAdmin):
    """The activation log: read-only, written only by the activation service."""

    list_display = ["created_at", "prompt", "from_version", "to_version", "actor", "reason"]
    list_filter = [("prompt__organization", admin.EmptyFieldListFilter)]
    search_fields = ["prompt__name", "reason", "actor__username"]
    list_select_related = ["prompt__organization", "from_version", "to_version", "actor"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
