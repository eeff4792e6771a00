"""The flowgraph demo: a feature team of five roles that edits a real sample project.

The demo's models are **scripted** replies: canned turns from ``flowgraph.demo._script``. The
``flowgraph demo`` command serves them with ``emulated_client()``: flowgraph's local Messages-API
emulator (``flowgraph.testing.Emulator``, an HTTP server on 127.0.0.1 in a background thread)
answers through the real ``anthropic`` SDK (``AnthropicModel``), so the run takes the same path
as one against the API — streaming, error mapping, the router's fallback chain — with no
network and no API key. One failure is injected on purpose: the backend's primary model is
overloaded (529) on its first call, and the role's fallback model absorbs it; the progress view
prints the fallback and the ledger records it under ``nodes["backend"]["served"]``.
``scripted_client()`` replays the same turns in process, without HTTP, for fast tests.

Everything else is real: the roles' tool calls read and write files in the run's workspace, the
``run_tests`` step runs the project's tests in a child Python process, and the run is recorded
in a resumable ledger.

The graph (``build_graph``), with each role's model::

    prepare (step)
      -> architect (opus)
        -> backend (sonnet, falls back to claude-sonnet-4-6)  +  frontend (haiku)   in parallel
          -> run_tests (step)                         after both
            -> tester (haiku)
              -> reviewer (opus)                      structured output: Review

``backend`` and ``frontend`` run in parallel; ``run_tests`` starts when both have passed and
fails the run if any test fails, so the tester and reviewer only see working code.

Example:
    >>> from flowgraph.demo import build_graph, emulated_client
    >>> result = build_graph().run_sync(client=emulated_client(), run_dir="runs/demo")
    >>> result["reviewer"]["verdict"]
    'approve'
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from flowgraph.declare.role import Role
from flowgraph.demo._emulated import DEMO_API_KEY, EmulatedModel, start_emulated
from flowgraph.demo._script import SCRIPT
from flowgraph.demo.steps import prepare, run_tests
from flowgraph.graph import Graph
from flowgraph.testing import ScriptedModel
from flowgraph.tools import CODER, READ_ONLY

__all__ = [
    "DEFAULT_FEATURE",
    "DEMO_API_KEY",
    "BACKEND_FALLBACK",
    "EmulatedModel",
    "Plan",
    "Review",
    "build_graph",
    "emulated_client",
    "offline_demo",
    "scripted_client",
]

DEFAULT_FEATURE = "add a due-date to todo items"
# The backend's fallback: it serves the backend's turns while its primary model is overloaded.
BACKEND_FALLBACK = "claude-sonnet-4-6"


class Plan(BaseModel):
    """The architect's output: the design in brief, and each builder's share of it."""

    summary: str = Field(description="the design in two or three sentences")
    backend: str = Field(description="what the backend developer changes, file by file")
    frontend: str = Field(description="what the frontend developer changes, file by file")


class Review(BaseModel):
    """The reviewer's verdict on the change."""

    verdict: Literal["approve", "request_changes"]
    notes: list[str] = Field(description="one finding per item, most important first")


_PROJECT = (
    "You work in a small Python project, the `todo` package, in your workspace; read, write "
    "and list files with your tools (paths relative to the workspace). Tests are plain "
    "functions named test_* in tests/test_*.py that use `assert` (no pytest)."
)

architect = Role(
    "architect",
    f"You are the software architect. {_PROJECT} Read the code (your tools are "
    "read-only), design the change, and split the work between a backend and a frontend developer.",
    model="opus",
    tools=READ_ONLY,
    output=Plan,
    max_turns=8,
)
backend = Role(
    "backend",
    f"You are a backend developer. {_PROJECT} Implement your part of the design in the "
    "library code, keep existing tests passing, and add tests for what you build.",
    model="sonnet",
    tools=CODER,
    max_turns=12,
    fallbacks=[BACKEND_FALLBACK],
)
frontend = Role(
    "frontend",
    f"You are a frontend developer. {_PROJECT} Build the user-facing part of the design "
    "(a command-line view) on the library API the design describes, with tests.",
    model="haiku",
    tools=CODER,
    max_turns=12,
)
tester = Role(
    "tester",
    f"You are a test engineer. {_PROJECT} The tests have run; read them and the code, and "
    "report what they cover and which cases are missing. Do not change files.",
    model="haiku",
    tools=READ_ONLY,
    max_turns=8,
)
reviewer = Role(
    "reviewer",
    f"You are the senior reviewer. {_PROJECT} Review the change against the design and the "
    "tester's report; approve it or request changes, with concrete notes.",
    model="opus",
    tools=READ_ONLY,
    output=Review,
    max_turns=8,
)


def build_graph() -> Graph:
    """The demo graph ``feature_team``: seven nodes, five roles, two parallel builders.

    Returns:
        A new ``Graph`` whose only input, ``feature``, defaults to ``DEFAULT_FEATURE``.
    """
    g = Graph("feature_team", model="sonnet", inputs={"feature": DEFAULT_FEATURE})
    g.node("prepare", prepare)
    g.node(
        "architect",
        architect,
        "Design this feature for the todo project: {feature}",
        after=["prepare"],
    )
    g.node(
        "backend",
        backend,
        "Implement the backend of: {feature}\nYour part of the design: {architect.backend}\n"
        "The whole design: {architect.summary}",
        after=["architect"],
    )
    g.node(
        "frontend",
        frontend,
        "Implement the frontend of: {feature}\nYour part of the design: {architect.frontend}\n"
        "The whole design: {architect.summary}",
        after=["architect"],
    )
    # Generous, but a hung test must not hold the run forever.
    g.node("run_tests", run_tests, after=["backend", "frontend"], timeout=120)
    g.node(
        "tester",
        tester,
        "The tests for '{feature}' ran: {run_tests.passed} passed, {run_tests.failed} failed.\n"
        "Runner output:\n{run_tests.output}\nReport on coverage and missing cases.",
        after=["run_tests"],
    )
    g.node(
        "reviewer",
        reviewer,
        "Review the change for '{feature}'.\nDesign summary: {architect.summary}\n"
        "Tester's report: {tester}",
        after=["tester"],
    )
    return g


def scripted_client(delay: float = 0.0) -> ScriptedModel:
    """A scripted model that plays every role of ``build_graph()`` offline.

    Args:
        delay: seconds to wait before each scripted reply, so a person watching the run sees
            the backend and frontend work in parallel.

    Returns:
        A fresh ``ScriptedModel``; its ``script`` dict may be edited (e.g. to make the backend
        write broken code) without affecting other clients.
    """
    return ScriptedModel(
        {node: list(turns) if not callable(turns) else turns for node, turns in SCRIPT.items()},
        default=None,  # a node the script forgot is a bug in the demo: fail loudly
        delay=delay,
    )


def emulated_client(
    delay: float = 0.0, *, graph: Graph | None = None, scripted: ScriptedModel | None = None
) -> EmulatedModel:
    """The demo's models through the real SDK: an ``AnthropicModel`` on a local emulator.

    Starts a ``flowgraph.testing.Emulator`` (127.0.0.1, a free port, a background thread; it
    stops when the returned model is collected or the interpreter exits) that answers every
    model id of the graph — each role's model and its fallbacks — from the per-node scripts of
    ``scripted_client``, and injects one 529 overload on the backend's first call, which the
    backend's fallback model absorbs.

    Args:
        delay: seconds the emulator waits before each response (its ``latency``).
        graph: the graph whose roles to serve; ``build_graph()`` by default.
        scripted: the scripted model that picks each reply; ``scripted_client()`` by default
            (pass an edited one to change what a role says).

    Returns:
        An ``EmulatedModel`` (an ``AnthropicModel``); ``.emulator`` logs every request.
    """
    return start_emulated(graph or build_graph(), scripted or scripted_client(), delay)


def offline_demo(delay: float = 0.0) -> Graph:
    """The bundled demo graph on its scripted models, served through the real ``anthropic`` SDK
    by a local Messages-API emulator (no network, no API key); what ``flowgraph demo`` runs."""
    graph = build_graph()
    graph.client = emulated_client(delay, graph=graph)
    return graph
