"""The layer contract: every import in flowgraph (at module level, inside functions, or under
``TYPE_CHECKING``) goes down the documented layers, and no module imports itself back through
others. The order is the one drawn in docs/architecture.md."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "flowgraph"

# Highest first: a module may import modules of its own layer and of any layer below it.
LAYERS: list[tuple[str, ...]] = [
    ("flowgraph.cli",),
    ("flowgraph.demo",),
    ("flowgraph.testing",),
    ("flowgraph.distributed",),
    (
        "flowgraph",
        "flowgraph.graph",
        "flowgraph.model",
        "flowgraph.advisor",
        "flowgraph.pricing",
        "flowgraph.anthropic_model",
        "flowgraph.pipeline",
        "flowgraph.telemetry",
        "flowgraph.evals",
    ),
    ("flowgraph.execute",),
    ("flowgraph.patterns",),
    ("flowgraph.agent",),
    ("flowgraph.compile",),
    ("flowgraph.declare",),
    ("flowgraph.tools",),
    ("flowgraph.money",),
    ("flowgraph.models",),
    ("flowgraph.ledger",),
    (
        "flowgraph.errors",
        "flowgraph.events",
        "flowgraph.clock",
        "flowgraph.logs",
        "flowgraph.status",
        "flowgraph.datafiles",
    ),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "sample_project" in path.parts:  # the demo's sample project is data, not flowgraph
            continue
        found[module_name(path)] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every flowgraph module ``name`` imports, by any import statement anywhere in it."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import mod` imports the module pkg.mod when there is one
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]  # fmt: skip
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def layer_of(name: str) -> int:
    best, rank = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), index
    return rank


@pytest.fixture(scope="module")
def graph() -> nx.DiGraph:
    found = modules()
    known = set(found)
    dag = nx.DiGraph()
    for name, path in found.items():
        dag.add_node(name)
        for target in imports_of(name, path, known):
            dag.add_edge(name, target)
    return dag


def test_every_module_has_a_layer(graph: nx.DiGraph) -> None:
    assert [n for n in graph if layer_of(n) < 0] == []


def test_no_import_goes_up_a_layer(graph: nx.DiGraph) -> None:
    upward = [
        f"{src} (layer {LAYERS[layer_of(src)][0]}) imports {dst} (layer {LAYERS[layer_of(dst)][0]})"
        for src, dst in graph.edges
        if layer_of(dst) < layer_of(src)
    ]
    assert upward == []


def test_no_module_is_part_of_an_import_cycle(graph: nx.DiGraph) -> None:
    cycles = [" -> ".join([*c, c[0]]) for c in nx.simple_cycles(graph)]
    assert cycles == []


def test_the_contract_sees_imports_inside_functions(tmp_path: Path) -> None:
    """The walk must catch a back-edge hidden in a function body (the old cycle breaker)."""
    path = tmp_path / "mod.py"
    path.write_text("def f():\n    from flowgraph.cli.app import main\n    return main\n")
    known = {"flowgraph.cli.app", "flowgraph.ledger.store"}
    assert imports_of("flowgraph.ledger.store", path, known) == {"flowgraph.cli.app"}


@pytest.mark.parametrize(
    ("old", "new", "names"),
    [
        ("flowgraph.pricing", "flowgraph.money.pricing", ["DEFAULT_PRICING", "Pricing"]),
        ("flowgraph.model", "flowgraph.models.seam", ["Model", "ModelRequest", "Usage"]),
        ("flowgraph.advisor", "flowgraph.declare.advisor", ["Advisor"]),
        ("flowgraph.anthropic_model", "flowgraph.models.anthropic", ["AnthropicModel"]),
    ],
)
def test_import_paths_users_already_use_still_give_the_same_objects(
    old: str, new: str, names: list[str]
) -> None:
    old_module, new_module = importlib.import_module(old), importlib.import_module(new)
    assert [getattr(old_module, n) is getattr(new_module, n) for n in names] == [True] * len(names)
