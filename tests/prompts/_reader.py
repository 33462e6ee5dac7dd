"""A second process for the cache tests: reads ``<organization_id> <name>`` lines on stdin and
answers each with the ActivePrompt served by ``prompt_active_for`` and the number of database
queries it took (0 = served from the shared cache). Started by test_cache.py with the test
database's DATABASE_URL and the same REDIS_URL."""

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "llmapp.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from prompts.selectors import prompt_active_for  # noqa: E402
from tenants.models import Organization  # noqa: E402

print("ready", flush=True)
for line in sys.stdin:
    org_id, name = line.split()
    organization = Organization.objects.get(pk=org_id)
    with CaptureQueriesContext(connection) as queries:
        active = prompt_active_for(organization=organization, name=name)
    print(json.dumps({"version": active.version, "queries": len(queries)}), flush=True)
