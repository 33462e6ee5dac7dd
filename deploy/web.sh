#!/bin/sh
# The production web command: migrate, then serve the ASGI app.
# Several worker processes share Prometheus metrics through PROMETHEUS_MULTIPROC_DIR, which
# must be emptied at start (stale files from a previous run would be summed in).
set -e
python manage.py migrate --noinput
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
  rm -rf "${PROMETHEUS_MULTIPROC_DIR:?}"/* && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
fi
exec uvicorn llmapp.asgi:application \
  --host 0.0.0.0 --port "${PORT:-8000}" \
  --workers "${WEB_WORKERS:-2}" \
  --loop uvloop --http httptools --ws websockets \
  --proxy-headers --no-access-log \
  --timeout-graceful-shutdown "${GRACEFUL_SHUTDOWN_SECONDS:-30}"
