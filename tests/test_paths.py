"""Names that cannot escape: any record name maps to one safe, bounded, collision-free file
name, and what nodes (or models) name things never writes outside the run directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from flowgraph import Context, Graph, Ledger, Role
from flowgraph.cli.output import transcript_of
from flowgraph.errors import NodeError
from flowgraph.ledger.paths import MAX_STEM, artifact_path, file_stem, inside
from flowgraph.patterns.checklist import item_names
from flowgraph.testing import ScriptedModel

NASTY = [
    "../../../tmp/x/pwned", "/etc/passwd", "..", ".", ".hidden", "a/b", "a\x00b", "CON",
    "todo[write the docs]", "todo[../../x]", "x" * 400, "ünïcödé", "\ud800", "a\nb", "",
    "fan[3]", "Fan[3]", "team.Plan", "plan-1", "plan_1",
]  # fmt: skip


def test_readable_names_stay_readable() -> None:
    for name in ("plan", "team.plan", "fan[3]", "loop.review2", "todo[login]", "a_b"):
        assert file_stem(name) == name
    assert artifact_path("outputs", "fan[3]") == "outputs/fan[3].json"


@pytest.mark.parametrize("name", NASTY)
def test_every_name_becomes_one_safe_bounded_component(name: str) -> None:
    stem = file_stem(name)
    assert 0 < len(stem) <= MAX_STEM
    assert "/" not in stem and "\x00" not in stem and stem not in (".", "..")
    assert not stem.startswith(".")
    assert stem.isascii() and stem.isprintable()


def test_stems_never_collide_even_when_case_is_folded() -> None:
    names = [*NASTY, "Plan", "plan", "PLAN", "x" * 401, "x" * 402, "a b", "a_b", "a:b"]
    stems = [file_stem(n).lower() for n in names]
    assert len(set(stems)) == len(names)


def test_inside_accepts_only_files_under_the_folder(tmp_path: Path) -> None:
    (tmp_path / "outputs").mkdir()
    assert inside(tmp_path, "outputs/a.json", "outputs") == (tmp_path / "outputs/a.json")
    os.symlink("/etc", tmp_path / "outputs" / "link")
    for bad in ("../x.json", "/etc/passwd", "outputs/../ledger.json", "outputs", "other/a",
                "outputs/link/passwd", 5, None, "outputs/a\x00"):  # fmt: skip
        assert inside(tmp_path, bad, "outputs") is None, bad


def test_item_names_are_cleaned_checked_and_deduplicated() -> None:
    assert item_names("todo", ["a", "a", " b\n c ", 3, "a"]) == ["a", "b c", "3"]
    for bad in ([], "a", [None], [{"x": 1}], [True], ["  "], ["x" * 1001]):
        with pytest.raises(NodeError, match="todo"):
            item_names("todo", bad)


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_checklist_items_named_like_paths_write_only_inside_the_run(tmp_path: Path) -> None:
    escape = "../../../tmp/x/pwned"
    long = "a very long item " * 30  # well past the 255-byte file-name limit
    target = Path("/tmp/x/pwned")
    existed = target.exists()

    async def init(ctx: Context) -> list[str]:
        return [escape, long, escape]

    async def build(ctx: Context) -> dict[str, Any]:
        return {"item": ctx.item, "pad": "y" * 20_000}  # large: written to outputs/

    g = Graph("escape")
    g.checklist("todo", init, build)
    (tmp_path / "inner").mkdir()
    run_dir = tmp_path / "inner" / "run"
    before = tree(tmp_path)
    assert g.run_sync(run_dir=run_dir).ok
    outside = {p for p in tree(tmp_path) - before if not p.startswith("inner/run")}
    assert outside == set()
    assert target.exists() == existed
    doc = Ledger.read(run_dir)
    assert [f.name for f in doc.features] == [escape, long.strip()]
    ledger = Ledger.open(run_dir)
    try:
        assert ledger.output(f"todo[{escape}]")["item"] == escape
    finally:
        ledger.close()
    for path in (run_dir / "outputs").iterdir():
        assert path.resolve().parent == (run_dir / "outputs").resolve()
        assert len(path.name) <= MAX_STEM + len(".json")


def test_a_very_long_node_name_with_a_large_output_runs_and_resumes(tmp_path: Path) -> None:
    name = "n" * 300

    async def big(ctx: Context) -> str:
        return "z" * 50_000

    async def after(ctx: Context) -> int:
        return len(ctx.outputs[name])

    g = Graph("long", client=ScriptedModel(default="w" * 20_000))
    g.node(name, big)
    g.node("after", after, after=[name])
    g.node("r" * 300, Role("writer", "You write."), "Write at length.")
    result = g.run_sync(run_dir=tmp_path / "run")
    assert result.ok and result.outputs["after"] == 50_000
    transcript = transcript_of(tmp_path / "run", "r" * 300)  # read from the journal
    assert transcript["messages"][0] == {"role": "user", "content": "Write at length."}
    assert transcript["messages"][-1]["content"][0]["text"] == "w" * 20_000
    again = g.run_sync(run_dir=tmp_path / "run")  # resume reads the output back from its file
    assert again.ok and again.executed == ()


def test_two_checklists_in_parallel_keep_their_own_items(tmp_path: Path) -> None:
    def lister(items: list[str]) -> Any:
        async def init(ctx: Context) -> list[str]:
            return items

        return init

    async def work(ctx: Context) -> str:
        return f"did {ctx.item}"

    async def check(item: str, output: Any, ctx: Context) -> bool | str | None:
        return None if not item.endswith("!") else "not yet"

    g = Graph("two")
    g.checklist("first", lister(["a", "b!"]), work, check=check)
    g.checklist("second", lister(["x", "y", "z"]), work, check=check)
    run_dir = tmp_path / "run"
    assert g.run_sync(run_dir=run_dir).status == "incomplete"
    doc = Ledger.read(run_dir)
    assert [(i["name"], i["passes"]) for i in doc.nodes["first"].items] == [
        ("a", True), ("b!", False),
    ]  # fmt: skip
    assert [i["name"] for i in doc.nodes["second"].items] == ["x", "y", "z"]
    assert doc.nodes["second"].status == "passed"
    # Resume: the first checklist still has its own two items, not the second's three.
    g.run_sync(run_dir=run_dir)
    doc = Ledger.read(run_dir)
    assert [i["name"] for i in doc.nodes["first"].items] == ["a", "b!"]
