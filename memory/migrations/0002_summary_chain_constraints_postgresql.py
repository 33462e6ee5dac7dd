"""PostgreSQL-only constraints on summary ranges (SQLite, the embedded default, skips them).

* ``summary_ranges_no_overlap``: an exclusion constraint (btree_gist) so no two ranges of one
  conversation overlap.
* ``summary_follows_previous``: a composite foreign key from ``(conversation, prev_end_seq)`` to
  ``(conversation, end_seq)``, so every summary but the first starts right after an existing one
  ends: no gaps. Deferred to commit so deleting a whole chain (its conversation) in one go is fine, while
  deleting one summary that another follows fails.
"""

from django.db import migrations

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS btree_gist",
    """ALTER TABLE memory_summary ADD CONSTRAINT summary_ranges_no_overlap
       EXCLUDE USING gist (conversation_id WITH =, int4range(start_seq, end_seq, '[]') WITH &&)""",
    """ALTER TABLE memory_summary ADD CONSTRAINT summary_follows_previous
       FOREIGN KEY (conversation_id, prev_end_seq)
       REFERENCES memory_summary (conversation_id, end_seq)
       DEFERRABLE INITIALLY DEFERRED""",
]
BACKWARD = [
    "ALTER TABLE memory_summary DROP CONSTRAINT IF EXISTS summary_follows_previous",
    "ALTER TABLE memory_summary DROP CONSTRAINT IF EXISTS summary_ranges_no_overlap",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for sql in statements:
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("memory", "0001_summary")]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD), elidable=False)]
