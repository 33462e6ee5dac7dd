"""The Celery app. Broker and results come from settings (``REDIS_URL``); without it tasks run
in-process (``CELERY_TASK_ALWAYS_EAGER``)."""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "llmapp.settings")

app = Celery("llmapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("default"), Queue("memory"))
app.autodiscover_tasks()
