"""What may run away from the coordinator, and `--ray` mistakes as one error line (these need
no cluster; tests/test_distributed.py runs the real one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowgraph import Advisor, Graph, Role, tool
from flowgraph.execute.executor import runs_anywhere
from flowgraph.tools import READ_ONLY

GRAPH = Path(__file__).parent / "ray_cluster" / "graphs.py"


@tool
def lookup(what: str) -> str:
    """Look something up."""
    return what


@tool(approval=True)
def deploy(where: str) -> str:
    """Deploy."""
    return where


def role_node(role: Role):  # type: ignore[no-untyped-def]
    graph = Graph("g")
    graph.node("n", role, "do it")
    return graph.validate().nodes["n"]


@pytest.mark.parametrize(
    ("role", "alone", "shared"),
    [
        (Role("plain", "p", tools=[lookup]), True, True),
        (Role("coder", "c", tools=READ_ONLY), False, True),  # the workspace is here
        (Role("adv", "a", advisor=Advisor("opus")), False, False),  # the run-wide pool is here
        (Role("ok", "o", tools=[deploy]), False, False),  # a person's decision arrives here
        (Role("ask", "a", tools=[lookup], approve=["lookup"]), False, False),
    ],
)
def test_what_runs_on_the_cluster(role: Role, alone: bool, shared: bool) -> None:
    node = role_node(role)
    assert runs_anywhere(node, shared_workspace=False) is alone
    assert runs_anywhere(node, shared_workspace=True) is shared


@pytest.mark.parametrize(
    ("address", "said"),
    [("127.0.0.1:1", "cannot reach the Ray cluster at 127.0.0.1:1"), ("nowhere", "not an address")],
)
def test_ray_address_mistakes_are_one_error_line(
    cli, tmp_path: Path, address: str, said: str
) -> None:
    pytest.importorskip("ray", reason="without ray the line says to install it")
    run_dir = tmp_path / "run"
    done = cli("run", f"{GRAPH}:batch", "-i", "n=1", "-i", "log=x", "--run-dir", str(run_dir),
               "--ray", address)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and said in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not run_dir.exists()
