"""Reads for prompts.

INTERFACE USED BY THE CHAT TURN (keep the signature): ``prompt_active_for``.

Visibility: an organisation sees its own prompts and the global ones (organization null); its own
prompt shadows a global one of the same name. Another organisation's prompt is never visible.
"""

import difflib
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db.models import Avg, Count, F, Max, Min, Q, QuerySet

from llmapp.errors import ApiError, NotFound
from prompts import cache as prompt_cache
from prompts.models import Prompt, PromptVersion
from prompts.templating import template_render

FALLBACK_SYSTEM_PROMPT = "You are a helpful assistant."


@dataclass(frozen=True)
class ActivePrompt:
    """What a turn needs of its prompt: the text to send and what to record."""

    version_id: int | None
    name: str
    version: int | None
    content: str
    model: str
    max_tokens: int


def prompt_version_ref(prompt: ActivePrompt) -> PromptVersion | None:
    """``prompt``'s version as a model instance that carries what a reference to it shows (id,
    number, prompt name) without a database read: for serialising a reply just stored with it.
    Only those fields are set; never save it."""
    if prompt.version_id is None:
        return None
    return PromptVersion(
        pk=prompt.version_id, version=prompt.version, prompt=Prompt(name=prompt.name)
    )


def turn_variables(*, organization, user=None, today=None) -> dict[str, str]:
    """The values a turn supplies to ``{{variable}}`` placeholders (see templating.TURN_VARIABLES)."""
    user_name = ""
    if user is not None:
        user_name = (user.get_full_name() or user.get_username()).strip()
    return {
        "organization_name": organization.name if organization is not None else "",
        "user_name": user_name or "the user",
        "date": (today or datetime.now(UTC).date()).isoformat(),
    }


def _active_row(organization_id, name: str) -> dict | None:
    """The database read behind the cache: the organisation's active version, else the global."""
    scopes = Q(prompt__organization__isnull=True)
    if organization_id:
        scopes |= Q(prompt__organization_id=organization_id)
    rows = list(
        PromptVersion.objects.filter(scopes, prompt__name=name, is_active=True).values(
            "id", "version", "content", "model", "max_tokens", "prompt__organization_id"
        )
    )
    if not rows:
        return None
    # The organisation's own prompt wins over the global one.
    rows.sort(key=lambda r: r["prompt__organization_id"] is None)
    row = rows[0]
    return {k: row[k] for k in ("id", "version", "content", "model", "max_tokens")}


def prompt_active_for(*, organization, name: str, user=None) -> ActivePrompt:
    """The active version of the organisation's prompt ``name``, else of the global one.

    Served from the epoch-keyed cache (prompts.cache): a change is seen by the very next call in
    every process, and a dead cache falls back to the database. ``content`` is rendered with
    ``turn_variables`` (pass ``user`` so ``{{user_name}}`` is the conversation's user). Falls
    back to a built-in prompt (version_id None) when neither prompt has an active version.
    """
    organization_id = organization.pk if organization is not None else None
    row = prompt_cache.cached_lookup(
        organization_id, name, lambda: _active_row(organization_id, name)
    )
    if row is None:
        return ActivePrompt(
            version_id=None,
            name=name,
            version=None,
            content=FALLBACK_SYSTEM_PROMPT,
            model=settings.LLM_DEFAULT_MODEL,
            max_tokens=settings.LLM_DEFAULT_MAX_TOKENS,
        )
    return ActivePrompt(
        version_id=row["id"],
        name=name,
        version=row["version"],
        content=template_render(
            row["content"], turn_variables(organization=organization, user=user)
        ),
        model=row["model"] or settings.LLM_DEFAULT_MODEL,
        max_tokens=row["max_tokens"] or settings.LLM_DEFAULT_MAX_TOKENS,
    )


# --- Visibility -----------------------------------------------------------------------------------


def prompts_visible(*, organization) -> QuerySet[Prompt]:
    """The organisation's prompts, then the global ones it does not shadow; by name within each."""
    own_names = Prompt.objects.filter(organization=organization).values("name")
    return (
        Prompt.objects.filter(
            Q(organization=organization) | (Q(organization__isnull=True) & ~Q(name__in=own_names))
        )
        .select_related("organization")
        # Its own first, then the global ones (one organisation id, so this is own-vs-global).
        .order_by(F("organization_id").asc(nulls_last=True), "name")
    )


def prompt_get_visible(*, organization, name: str) -> Prompt:
    """The prompt ``name`` as the organisation sees it (its own, else global), else 404."""
    prompt = prompts_visible(organization=organization).filter(name=name).first()
    if prompt is None:
        raise NotFound(f"No prompt named {name!r}.", code="prompt_not_found")
    return prompt


def prompt_active_version(*, prompt: Prompt) -> PromptVersion | None:
    return prompt.versions.filter(is_active=True).first()


def prompt_versions(*, prompt: Prompt) -> QuerySet[PromptVersion]:
    return prompt.versions.select_related("created_by").order_by("-version")


def prompt_version_get(*, prompt: Prompt, version: int) -> PromptVersion:
    found = prompt.versions.filter(version=version).first()
    if found is None:
        raise NotFound(
            f"Prompt {prompt.name!r} has no version {version}.", code="version_not_found"
        )
    return found


def prompt_version_is_used(*, version: PromptVersion) -> bool:
    """Used by a turn: some message records it. Used versions are immutable."""
    from conversations.models import Message

    return Message.objects.filter(prompt_version=version).exists()


def prompt_previous_version(*, prompt: Prompt) -> PromptVersion | None:
    """The version a rollback would re-activate: the ``from`` of the latest activation that made
    the current version active. None without an active version or when it was the first."""
    current = prompt.versions.filter(is_active=True).first()
    if current is None:
        return None
    last = (
        prompt.activations.filter(to_version=current)
        .select_related("from_version")
        .order_by("-id")
        .first()
    )
    return last.from_version if last is not None else None


# --- Stats ----------------------------------------------------------------------------------------


@dataclass
class VersionStats:
    """One version's figures over assistant messages that recorded it.

    ``uses`` counts every assistant message (complete, failed, stopped); the averages are over
    all of them (a failed turn usually has 0 output tokens and no latency; latency averages only
    the messages that have one). ``error_rate`` is failed / uses, None without uses.
    """

    version_id: int
    version: int
    is_active: bool
    uses: int = 0
    failed: int = 0
    avg_input_tokens: float | None = None
    avg_output_tokens: float | None = None
    avg_latency_ms: float | None = None
    error_rate: float | None = None
    first_used_at: datetime | None = None
    last_used_at: datetime | None = None


STAT_FIELDS = ("uses", "avg_input_tokens", "avg_output_tokens", "avg_latency_ms", "error_rate")


def prompt_stats(*, prompt: Prompt, organization=None) -> list[VersionStats]:
    """Per-version stats of ``prompt``, newest version first, computed from the messages.

    ``organization`` limits the messages to that organisation's conversations: an organisation
    reading a global prompt's stats sees its own usage, never another tenant's. Staff (admin)
    pass None for the figures over every organisation.
    """
    from conversations.models import Message

    messages = Message.objects.filter(role=Message.Role.ASSISTANT, prompt_version__prompt=prompt)
    if organization is not None:
        messages = messages.filter(conversation__organization=organization)
    rows = {
        row["prompt_version"]: row
        for row in messages.values("prompt_version")
        .order_by()
        .annotate(
            uses=Count("id"),
            failed=Count("id", filter=Q(status=Message.Status.FAILED)),
            avg_input_tokens=Avg("input_tokens"),
            avg_output_tokens=Avg("output_tokens"),
            avg_latency_ms=Avg("latency_ms"),
            first_used_at=Min("created_at"),
            last_used_at=Max("created_at"),
        )
    }
    result = []
    for pv in prompt.versions.order_by("-version").only("id", "version", "is_active"):
        stats = VersionStats(version_id=pv.pk, version=pv.version, is_active=pv.is_active)
        row = rows.get(pv.pk)
        if row:
            stats.uses = row["uses"]
            stats.failed = row["failed"]
            stats.avg_input_tokens = _round(row["avg_input_tokens"])
            stats.avg_output_tokens = _round(row["avg_output_tokens"])
            stats.avg_latency_ms = _round(row["avg_latency_ms"])
            stats.error_rate = round(row["failed"] / row["uses"], 4)
            stats.first_used_at = row["first_used_at"]
            stats.last_used_at = row["last_used_at"]
        result.append(stats)
    return result


def _round(value) -> float | None:
    return None if value is None else round(float(value), 2)


def version_diff_lines(a: PromptVersion, b: PromptVersion) -> list[str]:
    """A unified diff from ``a`` to ``b`` (lines without trailing newlines)."""
    return list(
        difflib.unified_diff(
            a.content.splitlines(),
            b.content.splitlines(),
            fromfile=f"{a.prompt.name} v{a.version}",
            tofile=f"{b.prompt.name} v{b.version}",
            lineterm="",
        )
    )


def prompt_compare(*, prompt: Prompt, a: int, b: int, organization=None) -> dict:
    """Two versions side by side: their unified diff, their stats and b minus a for each figure."""
    version_a = prompt_version_get(prompt=prompt, version=a)
    version_b = prompt_version_get(prompt=prompt, version=b)
    stats = {s.version: s for s in prompt_stats(prompt=prompt, organization=organization)}
    sa, sb = stats[a], stats[b]
    delta = {}
    for name in STAT_FIELDS:
        va, vb = getattr(sa, name), getattr(sb, name)
        delta[name] = None if va is None or vb is None else round(vb - va, 4)
    return {
        "a": version_a,
        "b": version_b,
        "stats_a": sa,
        "stats_b": sb,
        "delta": delta,
        "diff": "\n".join(version_diff_lines(version_a, version_b)),
    }


def parse_version_param(value, *, name: str) -> int:
    """A version number from a query parameter, else 400."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ApiError(
            f"Query parameter {name!r} must be a version number.", code="invalid_request"
        ) from None
    if number < 1:
        raise ApiError(
            f"Query parameter {name!r} must be a version number.", code="invalid_request"
        )
    return number


def versions_annotate_stats(queryset: QuerySet[PromptVersion]) -> QuerySet[PromptVersion]:
    """Annotate versions with the same figures as ``prompt_stats`` (over every organisation):
    ``stat_uses``, ``stat_failed``, ``stat_avg_input_tokens``, ``stat_avg_output_tokens``,
    ``stat_avg_latency_ms``, ``stat_first_used_at``, ``stat_last_used_at``. For the admin lists."""
    assistant = Q(messages__role="assistant")
    return queryset.annotate(
        stat_uses=Count("messages", filter=assistant),
        stat_failed=Count("messages", filter=assistant & Q(messages__status="failed")),
        stat_avg_input_tokens=Avg("messages__input_tokens", filter=assistant),
        stat_avg_output_tokens=Avg("messages__output_tokens", filter=assistant),
        stat_avg_latency_ms=Avg("messages__latency_ms", filter=assistant),
        stat_first_used_at=Min("messages__created_at", filter=assistant),
        stat_last_used_at=Max("messages__created_at", filter=assistant),
    )


def version_html_diff(a: PromptVersion | None, b: PromptVersion) -> str:
    """A side-by-side HTML table diffing ``a`` (e.g. the active version) against ``b``.

    difflib.HtmlDiff escapes the lines (&, <, >); the column titles are escaped here. The result
    is safe to mark_safe.
    """
    from django.utils.html import escape

    a_lines = a.content.splitlines() if a is not None else []
    a_title = f"v{a.version}{' (active)' if a.is_active else ''}" if a is not None else "(none)"
    b_title = f"v{b.version}{' (active)' if b.is_active else ''}"
    return difflib.HtmlDiff(wrapcolumn=90).make_table(
        a_lines, b.content.splitlines(), escape(a_title), escape(b_title)
    )
