"""Declaring graphs: validation before anything runs, rendering, fingerprints."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from flowgraph import Context, Graph, GraphError, Role

writer = Role("writer", "You write.")


async def step(ctx: Context) -> None:
    return None


def test_unknown_dependency_names_the_node_and_lists_the_nodes() -> None:
    g = Graph("g")
    g.node("plan", writer, "plan")
    g.node("tests", writer, "test", after=["reviwer"])
    with pytest.raises(
        GraphError,
        match=r"node 'tests' depends on .reviwer., which does not exist; nodes are: plan, tests",
    ):
        g.validate()


def test_cycle_is_refused_with_its_path() -> None:
    g = Graph("g")
    g.node("a", step, after=["c"])
    g.node("b", step, after=["a"])
    g.node("c", step, after=["b"])
    with pytest.raises(GraphError, match=r"has a cycle: .* -> .* -> .* -> "):
        g.validate()


def test_duplicate_node_is_refused_at_once() -> None:
    g = Graph("g")
    g.node("a", step)
    with pytest.raises(GraphError, match="'a' is declared twice"):
        g.node("a", step)


def test_template_field_nobody_provides() -> None:
    g = Graph("g", inputs=["feature"])
    g.node("plan", writer, "Plan {featur}")
    with pytest.raises(
        GraphError,
        match=r"uses \{featur\}, which no upstream node or input provides; inputs: feature",
    ):
        g.validate()


def test_template_field_of_a_node_that_is_not_upstream() -> None:
    g = Graph("g")
    g.node("plan", writer, "plan it")
    g.node("api", writer, "build {plan}")
    with pytest.raises(GraphError, match=r"add after=\['plan'\] to node 'api'"):
        g.validate()


def test_template_may_use_transitive_upstream_and_structured_fields() -> None:
    g = Graph("g", inputs=["feature"])
    plan = g.node("plan", writer, "plan {feature}")
    api = g.node("api", writer, "build {plan}")
    g.node("review", writer, "review {plan.endpoints} and {api}", after=[api])
    plan >> api >> g.node("ship", step)
    assert g.validate().order == ("plan", "api", "review", "ship")


def test_bad_model_alias_is_refused() -> None:
    g = Graph("g")
    with pytest.raises(GraphError, match="unknown model 'sonet'; use one of opus, sonnet, haiku"):
        g.node("a", Role("r", "x", model="sonet"), "task")


def test_sync_function_step_is_refused() -> None:
    def run_tests(ctx: Context) -> None:
        return None

    g = Graph("g")
    with pytest.raises(GraphError, match="is not async; declare it `async def"):
        g.node("tests", run_tests)


def test_empty_graph_is_refused() -> None:
    with pytest.raises(GraphError, match="has no nodes"):
        Graph("empty").validate()


def test_more_than_three_fallbacks_is_a_definition_error() -> None:
    with pytest.raises(GraphError, match="at most 3"):
        Role("r", "x", fallbacks=["opus", "sonnet", "haiku", "claude-opus-4-7"])


def test_inherit_takes_the_graph_default_and_aliases_resolve() -> None:
    g = Graph("g", model="haiku")
    g.node("a", Role("r", "x"), "task")
    g.node("b", Role("r2", "x", model="opus"), "task")
    g.node("c", Role("r3", "x", model="claude-sonnet-4-6"), "task")
    nodes = g.validate().nodes
    assert [nodes[n].model for n in "abc"] == [
        "claude-haiku-5-5",
        "claude-opus-5-5",
        "claude-sonnet-4-6",
    ]


def test_rshift_declares_dependencies_in_both_directions() -> None:
    g = Graph("g")
    a, b, c, d = (g.node(n, step) for n in "abcd")
    a >> [b, c]
    [b, c] >> d
    valid = g.validate()
    assert valid.nodes["d"].after == ("b", "c")
    assert valid.nodes["b"].after == ("a",)


def test_render_gives_mermaid_with_every_edge() -> None:
    g = Graph("g", model="sonnet")
    g.node("plan", Role("architect", "x", model="opus"), "plan")
    g.node("tests", step, after=["plan"])
    text = g.render()
    assert text.startswith("flowchart TD\n")
    assert 'plan["plan<br/>architect · claude-opus-5-5"]' in text
    assert "tests[[" in text
    assert "plan --> tests" in text


def test_fingerprint_changes_for_the_edited_node_and_its_descendants_only() -> None:
    def build(task: str) -> Graph:
        g = Graph("g")
        g.node("a", writer, "a")
        g.node("b", writer, task, after=["a"])
        g.node("c", writer, "c", after=["b"])
        g.node("d", writer, "d", after=["a"])
        return g

    before = build("b").validate().fingerprints
    after = build("b, but better").validate().fingerprints
    changed = {n for n in before if before[n] != after[n]}
    assert changed == {"b", "c"}


def test_output_schema_and_tools_are_part_of_the_fingerprint() -> None:
    class Out(BaseModel):
        x: int

    def fp(role: Role) -> str:
        g = Graph("g")
        g.node("a", role, "task")
        return g.validate().fingerprints["a"]

    def lookup(query: str) -> str:
        """Look it up."""
        return query

    base = fp(Role("r", "x"))
    assert fp(Role("r", "x", output=Out)) != base
    assert fp(Role("r", "x", tools=[lookup])) != base
    assert fp(Role("r", "x")) == base


def test_node_name_must_be_an_identifier() -> None:
    with pytest.raises(GraphError, match="not valid; use letters, digits and _"):
        Graph("g").node("run-tests", step)
