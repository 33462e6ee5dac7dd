"""Custom admin pages for prompts: Activate and Roll back (confirmation with a diff and a reason,
then the same service as the API) and Compare (diff plus stats of two versions).

Each factory takes the PromptAdmin and returns a view; PromptAdmin.get_urls wraps them in
``admin_site.admin_view`` (staff login and CSRF).
"""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.safestring import mark_safe

from llmapp.errors import ApiError
from prompts import selectors, services
from prompts.models import Prompt


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        required=False,
        widget=forms.TextInput(attrs={"size": 80}),
        help_text="Why: kept in the activation log.",
    )


def _prompt_or_404(model_admin, request, object_id, *, change: bool) -> Prompt:
    prompt = model_admin.get_object(request, object_id)
    if prompt is None:
        raise Http404("No such prompt.")
    allowed = (
        model_admin.has_change_permission(request, prompt)
        if change
        else model_admin.has_view_permission(request, prompt)
    )
    if not allowed:
        raise PermissionDenied
    return prompt


def _change_url(prompt: Prompt) -> str:
    return reverse("admin:prompts_prompt_change", args=[prompt.pk])


def _context(model_admin, request, prompt: Prompt, **extra) -> dict:
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "original": prompt,
        "prompt": prompt,
        "change_url": _change_url(prompt),
        **extra,
    }


def _confirm(model_admin, request, prompt, *, title, current, target, run):
    """The shared confirm-then-run flow of Activate and Roll back."""
    form = ReasonForm(request.POST or None)
    if request.method == "POST" and target is not None and form.is_valid():
        try:
            result = run(form.cleaned_data["reason"])
        except ApiError as error:
            messages.error(request, str(error.detail))
            return HttpResponseRedirect(_change_url(prompt))
        if result.changed:
            messages.success(request, f"{prompt.name}: v{result.version.version} is now active.")
        else:
            messages.info(request, f"{prompt.name}: v{result.version.version} was already active.")
        return HttpResponseRedirect(_change_url(prompt))
    stats = {s.version: s for s in selectors.prompt_stats(prompt=prompt)}
    diff = selectors.version_html_diff(current, target) if target is not None else ""
    return TemplateResponse(
        request,
        "admin/prompts/confirm.html",
        _context(
            model_admin,
            request,
            prompt,
            title=title,
            current=current,
            target=target,
            current_stats=stats.get(current.version) if current else None,
            target_stats=stats.get(target.version) if target else None,
            diff=mark_safe(diff),  # noqa: S308 (difflib escapes the lines)
            form=form,
        ),
    )


def activate_view(model_admin):
    def view(request, object_id, version):
        prompt = _prompt_or_404(model_admin, request, object_id, change=True)
        target = prompt.versions.filter(version=version).first()
        if target is None:
            raise Http404("No such version.")
        return _confirm(
            model_admin,
            request,
            prompt,
            title=f"Activate {prompt.name} v{version}",
            current=selectors.prompt_active_version(prompt=prompt),
            target=target,
            run=lambda reason: services.prompt_activate(
                prompt=prompt, version=version, actor=request.user, reason=reason
            ),
        )

    return view


def rollback_view(model_admin):
    def view(request, object_id):
        prompt = _prompt_or_404(model_admin, request, object_id, change=True)
        target = selectors.prompt_previous_version(prompt=prompt)
        if target is None:
            messages.error(request, f"{prompt.name} has no previous version to roll back to.")
            return HttpResponseRedirect(_change_url(prompt))
        return _confirm(
            model_admin,
            request,
            prompt,
            title=f"Roll back {prompt.name} to v{target.version}",
            current=selectors.prompt_active_version(prompt=prompt),
            target=target,
            run=lambda reason: services.prompt_rollback(
                prompt=prompt, actor=request.user, reason=reason
            ),
        )

    return view


def compare_view(model_admin):
    def view(request, object_id):
        prompt = _prompt_or_404(model_admin, request, object_id, change=False)
        versions = list(prompt.versions.order_by("-version"))
        if not versions:
            messages.error(request, f"{prompt.name} has no versions yet.")
            return HttpResponseRedirect(_change_url(prompt))
        active = next((v for v in versions if v.is_active), versions[-1])
        numbers = {v.version for v in versions}

        def pick(param, default):
            try:
                number = int(request.GET.get(param, default))
            except ValueError:
                number = default
            return number if number in numbers else default

        a = pick("a", active.version)
        b = pick("b", versions[0].version)
        result = selectors.prompt_compare(prompt=prompt, a=a, b=b)
        rows = [
            (
                label,
                getattr(result["stats_a"], f),
                getattr(result["stats_b"], f),
                result["delta"][f],
            )
            for label, f in [
                ("uses", "uses"),
                ("avg input tokens", "avg_input_tokens"),
                ("avg output tokens", "avg_output_tokens"),
                ("avg latency (ms)", "avg_latency_ms"),
                ("error rate", "error_rate"),
            ]
        ]
        return TemplateResponse(
            request,
            "admin/prompts/compare.html",
            _context(
                model_admin,
                request,
                prompt,
                title=f"Compare {prompt.name} v{a} and v{b}",
                versions=versions,
                a=result["a"],
                b=result["b"],
                stats_rows=rows,
                diff=mark_safe(selectors.version_html_diff(result["a"], result["b"])),  # noqa: S308
                unified=result["diff"],
            ),
        )

    return view
