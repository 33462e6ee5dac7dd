"""Writes for memory.

INTERFACE USED BY THE CHAT TURN (keep the signature): ``memory_after_turn``.
"""


def memory_after_turn(
    *, conversation_id, model: str, estimated_input_tokens: int, reported_input_tokens: int
) -> None:
    """Called after each stored assistant reply (after commit): calibrates the token estimator
    and enqueues summarisation when the conversation has grown long. A no-op for now."""
