"""Reads for conversations, always given the tenant."""

import datetime as dt

from django.db.models import CharField, Count, F, QuerySet, Sum, Value
from django.db.models.functions import Cast, Coalesce, Concat, TruncDate

from conversations.models import Conversation, Message
from tenants.selectors import TenantContext


def conversations_visible(*, tenant: TenantContext) -> QuerySet[Conversation]:
    """The conversations the caller may see and use: a member's own; for an organisation admin,
    every conversation of the organisation. Another organisation's never (a 404)."""
    queryset = Conversation.objects.filter(organization=tenant.organization)
    if not tenant.is_admin:
        queryset = queryset.filter(user=tenant.user)
    return queryset


def conversation_list(*, tenant: TenantContext, everyone: bool = False) -> QuerySet[Conversation]:
    """The caller's own conversations, most recently updated first; with ``everyone`` (admins
    only), the whole organisation's."""
    queryset = conversations_visible(tenant=tenant)
    if not (everyone and tenant.is_admin):
        queryset = queryset.filter(user=tenant.user)
    return queryset.select_related("user")


def message_list(*, conversation: Conversation) -> QuerySet[Message]:
    """A conversation's messages, oldest first."""
    return (
        Message.objects.filter(conversation=conversation)
        .select_related("prompt_version__prompt")
        .order_by("seq")
    )


_GROUPS = {
    "day": TruncDate("created_at"),
    "model": F("model"),
    "user": F("conversation__user__username"),
    "prompt_version": F("prompt_version_id"),
}


def usage_summary(
    *,
    tenant: TenantContext,
    group_by: str,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> list[dict]:
    """Tokens and cost of the organisation's assistant messages, summed per group.

    Every assistant message counts, whatever its status: a failed or stopped reply was still
    billed for what it used. ``date_from``/``date_to`` are inclusive UTC days. Each row has
    ``key`` (the day, model, username or prompt version id; None for replies without one) and
    a readable ``label`` (``"<prompt> v<N>"`` for prompt versions).
    """
    rows = Message.objects.filter(
        conversation__organization=tenant.organization, role=Message.Role.ASSISTANT
    )
    if date_from:
        rows = rows.filter(created_at__date__gte=date_from)
    if date_to:
        rows = rows.filter(created_at__date__lte=date_to)
    zero = Value(0)
    label = {
        "prompt_version": Concat(
            F("prompt_version__prompt__name"),
            Value(" v"),
            Cast("prompt_version__version", CharField()),
        )
    }.get(group_by, _GROUPS[group_by])
    result = list(
        rows.annotate(key=_GROUPS[group_by], label=label)
        .values("key", "label")
        .annotate(
            messages=Count("id"),
            input_tokens=Coalesce(Sum("input_tokens"), zero),
            output_tokens=Coalesce(Sum("output_tokens"), zero),
            cache_read_input_tokens=Coalesce(Sum("cache_read_input_tokens"), zero),
            cache_creation_input_tokens=Coalesce(Sum("cache_creation_input_tokens"), zero),
            cost_usd=Sum("cost_usd"),
        )
        .order_by("key")
    )
    for row in result:
        row["key"] = _text(row["key"])
        # Replies with no model / prompt version have nothing to label.
        row["label"] = _text(row["label"]) if row["key"] is not None else None
    return result


def _text(value) -> str | None:
    if isinstance(value, dt.date):
        return value.isoformat()
    return None if value is None or value == "" else str(value)
