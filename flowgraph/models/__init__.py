"""Models: the ``Model`` seam, the SDK-backed ``AnthropicModel`` (the only importer of the
``anthropic`` SDK) and the router (fallback chains, circuit breaker, per-model limits).

May import: ``ledger`` and the foundation modules.
"""
