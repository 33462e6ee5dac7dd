#!/bin/sh
# The production web command: migrate, then serve the ASGI app.
# WEB_SERVER picks the server: uvicorn (the default, with uvloop and httptools, WEB_WORKERS
# processes) or daphne (one process; the design's reference server). The default is what
# `make bench` measured fastest on a 2-core machine: see bench/README.md for the figures.
# Several worker processes share Prometheus metrics through PROMETHEUS_MULTIPROC_DIR, which
# must be emptied at start (stale files from a previous run would be summed in).
# MIGRATE_ON_START=0 skips the migration step (when a release job runs it, or the benchmark has).
set -e
if [ "${MIGRATE_ON_START:-1}" != "0" ]; then
  python manage.py migrate --noinput
fi
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
  rm -rf "${PROMETHEUS_MULTIPROC_DIR:?}"/* && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
fi
HOST="${WEB_HOST:-0.0.0.0}"
PORT="${PORT:-8000}"
case "${WEB_SERVER:-uvicorn}" in
  uvicorn)
    exec uvicorn llmapp.asgi:application \
      --host "$HOST" --port "$PORT" \
      --workers "${WEB_WORKERS:-2}" \
      --loop uvloop --http httptools --ws websockets \
      --lifespan off --proxy-headers --no-access-log \
      --timeout-graceful-shutdown "${GRACEFUL_SHUTDOWN_SECONDS:-30}"
    ;;
  daphne)
    # One process only (daphne has no workers); no graceful-shutdown timeout of its own.
    exec daphne -b "$HOST" -p "$PORT" --proxy-headers --access-log /dev/null \
      llmapp.asgi:application
    ;;
  *)
    echo "WEB_SERVER must be uvicorn or daphne, not '${WEB_SERVER}'" >&2
    exit 64
    ;;
esac
