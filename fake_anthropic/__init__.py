"""A local server that speaks the Anthropic Messages API (JSON and SSE).

Run it with ``python -m fake_anthropic --port N``; tests start it with
``fake_anthropic.testing.start_fake_anthropic()`` or the ``fake_anthropic_server`` fixture.

Modules: ``server`` (routes, auth, streaming, counters), ``validation`` (400s like the API),
``tokens`` (the fake's own token counter), ``cache`` (prompt caching), ``replies``
(deterministic replies and extractive summaries), ``knobs`` (delays, lengths and injected
faults via ``[[fake:...]]`` directives, ``x-fake-*`` headers or CLI defaults), ``testing``
(subprocess helper and pytest fixture). See README.md for the whole contract.
"""
