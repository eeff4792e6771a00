"""What an endpoint's answers say about the native advisor tool it was sent.

Two signs that the native tool should not go to an endpoint: a 400 that names the advisor
(``refuses_native``: the endpoint does not take the tool) and a translated answer with no
trace of it (``consult_out_of_sight``: the endpoint took the tool and ran the consult, or
dropped it, where flowgraph cannot count or price it).
"""

from __future__ import annotations

from flowgraph.errors import ModelError, TransientModelError
from flowgraph.models.seam import ModelResponse

__all__ = ["MESSAGE_ID_PREFIX", "TOOL_NAME", "consult_out_of_sight", "refuses_native"]

TOOL_NAME = "advisor"
MESSAGE_ID_PREFIX = "msg_"  # the ids of Anthropic's Messages API (and of Anthropic-style servers)


def consult_out_of_sight(response: ModelResponse) -> bool:
    """Whether an answer to a request that offered the native tool came from an endpoint that
    cannot have run the tool where flowgraph sees it.

    The rule: no ``server_tool_use`` / ``advisor_tool_result`` block, no ``advisor_message``
    iteration, **and** the answer is not a Messages-API message of Anthropic's (its id is not
    ``msg_...``). An answer without advisor blocks is normal where the executor did not consult;
    an answer translated from another provider (LiteLLM answers ``chatcmpl-...``) is not: the
    gateway took the tool and either dropped it or ran the advisor loop itself (extra upstream
    calls, none of them reported), and from its answer the two cannot be told apart. An answer
    with no id says nothing either way and is not flagged.
    """
    if any(i.get("type") == "advisor_message" for i in response.usage.iterations):
        return False
    if any(
        b.get("type") == "advisor_tool_result"
        or (b.get("type") == "server_tool_use" and b.get("name") == TOOL_NAME)
        for b in response.content
    ):
        return False
    return bool(response.id) and not response.id.startswith(MESSAGE_ID_PREFIX)


def refuses_native(error: BaseException) -> bool:
    """A 400 that names the advisor tool or its beta: the endpoint does not support it."""
    return (
        isinstance(error, ModelError)
        and not isinstance(error, TransientModelError)
        and error.status == 400
        and ("advisor" in str(error).lower())
    )
