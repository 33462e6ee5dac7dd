"""Conversation memory: a sliding window inside a token budget, plus rolling summaries.

* ``memory.tokens``: the one token-counting interface (local estimate, per-model safety margin
  calibrated from reported usage and shared through the cache, the budget).
* ``memory.context.context_build(conversation=, prompt=)``: what a turn sends (system prompt,
  then the latest summary as a ``[[conversation-summary]]`` block, then the newest messages that
  fit); the pure rules live in ``memory.window``.
* ``memory.services.memory_after_turn(...)``: after each reply, calibrate and maybe enqueue
  ``memory.tasks.summarize_conversation`` (queue ``memory``) after commit.
* ``Summary`` (``memory.models``): covered ranges form a gapless, non-overlapping chain.
* API: ``GET /api/v1/conversations/{id}/context`` and ``.../summaries``; admin: Summary.
* ``memory.bench.run()``: figures for the benchmark runner.
"""
