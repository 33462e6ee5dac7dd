"""Celery tasks of memory (queue ``memory``)."""

import random

import structlog
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from memory.services import (
    SummaryFailed,
    summary_backlog,
    summary_enqueue,
    summary_generate,
    summary_lock_acquire,
    summary_lock_release,
)

log = structlog.get_logger(__name__)


def retry_countdown(retries: int) -> float:
    """Exponential backoff with full jitter: up to 2, 4, 8 ... seconds, capped."""
    cap = settings.MEMORY_SUMMARY_RETRY_BACKOFF_MAX_SECONDS
    return random.uniform(0, min(cap, 2 ** (retries + 1)))


@shared_task(
    bind=True,
    name="memory.tasks.summarize_conversation",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.MEMORY_SUMMARY_SOFT_TIME_LIMIT_SECONDS,
    time_limit=settings.MEMORY_SUMMARY_TIME_LIMIT_SECONDS,
    max_retries=settings.MEMORY_SUMMARY_MAX_RETRIES,
    ignore_result=True,
)
def summarize_conversation(self, conversation_id: str) -> int | None:
    """Write the conversation's next rolling summary (``memory.services.summary_generate``).

    Idempotent and safe in parallel: a run that finds another one in progress, or nothing due,
    does nothing; ranges are claimed in the database. Retryable failures (model errors marked
    retryable, timeouts, empty or truncated summaries) are retried with exponential backoff and
    jitter; nothing is stored until a summary succeeds. Returns the new summary's id, if any.
    """
    token = summary_lock_acquire(
        conversation_id=conversation_id, timeout=settings.MEMORY_SUMMARY_TIME_LIMIT_SECONDS
    )
    if token is None:
        log.info("memory.summary_skipped", conversation_id=conversation_id, reason="in_progress")
        return None
    try:
        summary = summary_generate(conversation_id=conversation_id)
    except (SummaryFailed, SoftTimeLimitExceeded) as exc:
        retryable = getattr(exc, "retryable", True)
        reason = getattr(exc, "reason", "timeout")
        log.warning(
            "memory.summary_failed",
            conversation_id=conversation_id,
            reason=reason,
            retryable=retryable,
            attempt=self.request.retries + 1,
        )
        if not retryable or self.request.retries >= self.max_retries:
            return None
        raise self.retry(exc=exc, countdown=retry_countdown(self.request.retries)) from exc
    finally:
        summary_lock_release(conversation_id=conversation_id, token=token)
    # A long backlog (a worker was down) is summarised range by range.
    backlog = summary_backlog(conversation_id=conversation_id)
    if summary is not None and backlog >= settings.MEMORY_SUMMARY_TRIGGER_MESSAGES:
        summary_enqueue(conversation_id=conversation_id)
    return summary.pk if summary else None
