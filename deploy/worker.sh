#!/bin/sh
# The Celery worker: both queues, a thread pool (the tasks wait on the model and the database,
# not the CPU) so one process serves its Prometheus metrics on CELERY_METRICS_PORT.
set -e
exec celery -A llmapp worker -Q default,memory -P threads \
  --concurrency "${WORKER_CONCURRENCY:-8}" --loglevel INFO
