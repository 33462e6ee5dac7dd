"""Rolling summaries of a conversation's older messages.

A Summary covers the inclusive range ``start_seq..end_seq`` of message sequence numbers. The
ranges of one conversation form a chain from 1: contiguous, never overlapping, never leaving a
gap. The database enforces it (see the migrations): ``start_seq <= end_seq``, unique starts and
unique ends per conversation, ``prev_end_seq`` (a generated column, ``start_seq - 1`` or NULL for
the first summary) and, on PostgreSQL, a composite foreign key from ``(conversation,
prev_end_seq)`` to ``(conversation, end_seq)`` (so every summary starts right after another one
ends) plus an exclusion constraint on ``int4range(start_seq, end_seq, '[]')``.

Each new summary is *rolling*: it was written from the previous summary plus the messages of its
own range, so the latest one alone stands for everything up to its ``end_seq``. Older summaries
and every message stay in the database.
"""

from django.db import models
from django.db.models import Case, F, Q, Value, When


class Summary(models.Model):
    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="summaries"
    )
    start_seq = models.PositiveIntegerField()
    end_seq = models.PositiveIntegerField()
    # Derived by the database, so the chain rule can be a foreign key (PostgreSQL).
    prev_end_seq = models.GeneratedField(
        expression=Case(
            When(start_seq=1, then=Value(None)),
            default=F("start_seq") - 1,
            output_field=models.IntegerField(null=True),
        ),
        output_field=models.IntegerField(null=True),
        db_persist=True,
    )
    content = models.TextField()
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    model = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "start_seq"]
        verbose_name_plural = "summaries"
        constraints = [
            models.CheckConstraint(
                condition=Q(start_seq__gte=1) & Q(start_seq__lte=F("end_seq")),
                name="summary_range_valid",
            ),
            models.UniqueConstraint(
                fields=["conversation", "start_seq"], name="uniq_summary_start"
            ),
            models.UniqueConstraint(fields=["conversation", "end_seq"], name="uniq_summary_end"),
        ]

    def __str__(self) -> str:
        return f"{self.conversation_id} {self.start_seq}-{self.end_seq}"

    @property
    def message_count(self) -> int:
        return self.end_seq - self.start_seq + 1
