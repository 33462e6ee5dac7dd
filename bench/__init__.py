"""Benchmarks: the chat path against the same request sent straight to the model.

``python -m bench`` (``make bench``) starts fake_anthropic, a fresh PostgreSQL database, Redis, a
Celery worker and the server under test on loopback, runs the scenarios of bench/README.md for
each server configuration and prints a table; ``--json`` prints the same figures as one object,
``--quick`` runs a smaller set in under a minute. Modules: ``stack`` (processes), ``clients``
(the load generator's HTTP, SSE, WebSocket and direct SDK clients), ``scenarios`` (what is
measured), ``extern`` (the memory and rate-limit figures from their own features), ``runner``
and ``report``.
"""
