"""The Celery app. Broker and results come from settings (``REDIS_URL``); without it tasks run
in-process (``CELERY_TASK_ALWAYS_EAGER``).

Each task's outcome is counted in ``celery_tasks_total{task,outcome}`` and timed in
``celery_task_duration_seconds{task}``; a worker started with ``CELERY_METRICS_PORT`` serves them
on that port for Prometheus.
"""

import os
import time

from celery import Celery, signals
from kombu import Queue
from prometheus_client import Counter, Histogram, start_http_server

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "llmapp.settings")

app = Celery("llmapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("default"), Queue("memory"))
app.autodiscover_tasks()

TASKS = Counter("celery_tasks_total", "Celery task outcomes.", ["task", "outcome"])
TASK_DURATION = Histogram(
    "celery_task_duration_seconds",
    "Celery task run time.",
    ["task"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
_started: dict[str, float] = {}


@signals.worker_init.connect
def _serve_worker_metrics(**_kwargs) -> None:
    port = os.environ.get("CELERY_METRICS_PORT")
    if port:
        start_http_server(int(port))


@signals.task_prerun.connect
def _task_started(task_id=None, **_kwargs) -> None:
    _started[task_id] = time.perf_counter()


@signals.task_postrun.connect
def _task_finished(task_id=None, task=None, state=None, **_kwargs) -> None:
    started = _started.pop(task_id, None)
    if started is not None and task is not None:
        TASK_DURATION.labels(task=task.name).observe(time.perf_counter() - started)
    if task is not None and state:
        TASKS.labels(task=task.name, outcome=state.lower()).inc()
