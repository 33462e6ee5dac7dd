"""Seed the global ``default-system-prompt``, version 1, active, with its activation log row."""

from django.db import migrations

from prompts.seed import seed_default_prompt, unseed_default_prompt


def seed(apps, schema_editor):
    seed_default_prompt(apps)


def unseed(apps, schema_editor):
    unseed_default_prompt(apps)


class Migration(migrations.Migration):
    dependencies = [("prompts", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
