"""A cross-lab review loop on two endpoints: Claude writes, a model from another lab reviews.

The writer runs on the default endpoint (Anthropic's API); the reviewer, a GPT-class model, on
a second endpoint named ``gateway`` (any Anthropic-compatible gateway: OpenRouter, LiteLLM...),
picked with ``Role(endpoint="gateway")``. Every recorded turn names its endpoint, and
``flowgraph cost`` shows the spend per endpoint.

    flowgraph run examples/cross_lab_review.py --run-dir runs/cross_lab
    flowgraph cost runs/cross_lab

With ANTHROPIC_API_KEY, GATEWAY_URL and GATEWAY_TOKEN set, both endpoints are real. Otherwise
the example is OFFLINE: each endpoint is its own local Messages-API emulator (two processes'
worth of HTTP on 127.0.0.1, the real SDK, canned replies): the reviewer asks for one change,
then approves.
"""

import json
import os

from pydantic import BaseModel

from flowgraph import Graph, Role
from flowgraph.models.anthropic import AnthropicModel
from flowgraph.models.endpoints import Endpoint, Endpoints
from flowgraph.money.pricing import DEFAULT_PRICING
from flowgraph.testing.emulator import Emulator, Reply

WRITER = "claude-sonnet-4-6"
REVIEWER = "openai/gpt-5.5"


class Verdict(BaseModel):
    approved: bool
    notes: str


writer = Role("writer", "You write short, concrete release notes for developers.", model=WRITER)
reviewer = Role(
    "reviewer",
    "You review release notes: approve them only if every item says what changed for the user.",
    model=REVIEWER,
    endpoint="gateway",
    output=Verdict,
)

if os.environ.get("ANTHROPIC_API_KEY") and os.environ.get("GATEWAY_URL"):
    client = Endpoints(
        {
            "gateway": Endpoint(
                os.environ["GATEWAY_URL"], api_key_env="", auth_token_env="GATEWAY_TOKEN"
            )
        }
    )
else:
    anthropic_side = Emulator().start()
    gateway_side = Emulator().start()
    anthropic_side.script(WRITER, [
        Reply.text("- Faster resume.\n- Misc fixes."),
        Reply.text("- Resume skips passed map items.\n- `flowgraph steer` reaches pending nodes."),
    ])  # fmt: skip
    gateway_side.script(REVIEWER, [
        Reply.text(json.dumps({"approved": False, "notes": "Say what 'misc fixes' fixed."})),
        Reply.text(json.dumps({"approved": True, "notes": "Clear and specific."})),
    ])  # fmt: skip
    client = Endpoints(
        {"gateway": AnthropicModel("offline", base_url=gateway_side.base_url)},
        default=AnthropicModel("offline", base_url=anthropic_side.base_url),
    )

# The gateway's price for the reviewer (USD per million tokens), kept apart per endpoint.
pricing = DEFAULT_PRICING.with_prices({f"gateway:{REVIEWER}": {"input": 1.25, "output": 10.0}})

graph = Graph("cross_lab_review", inputs={"version": "1.4.0"}, client=client, pricing=pricing)
notes = graph.node("notes", writer, "Write the release notes for version {version}.")
graph.review_loop(
    "edit", reviewer, "Review these release notes (round {round}):\n{work}", work=notes
)

if __name__ == "__main__":
    edit = graph.run_sync().outputs["edit"]
    print(f"approved after {edit['rounds']} round(s):\n{edit['work']}")
