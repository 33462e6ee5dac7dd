"""Rate limits, quotas and budgets per tenant, shared by every app process through Redis.

Entry points are in ``tenants/limits.py`` (``request_admit``, ``turn_admit``, ``TurnLease``).
Here: ``decide.lua`` (the one script that decides all applicable limits at once, all or
nothing, on Redis's clock), ``core`` (decision types and the same algorithm in memory),
``policy`` (which limits apply to a tenant, and their hash-tagged keys), ``backends`` (Redis
pools, fail-open/closed), ``headers`` (RateLimit fields and the 429), ``throttles`` (the DRF
hook), ``middleware`` (fields on every limited response), ``metrics``, ``bench``.
"""
