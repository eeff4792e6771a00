"""Race: the same task on several configurations, each in its own copy of the workspace; a
check (e.g. the tests pass) or a judge role picks the winner, whose files and output go on."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowgraph.declare.context import Context
from flowgraph.declare.names import local_of
from flowgraph.declare.nodes import RaceNode, RoleNode
from flowgraph.errors import NodeError

if TYPE_CHECKING:
    from flowgraph.patterns.env import Env

__all__ = ["run_race"]

RACE_DIR = ".race"


def prepare_workspace(base: Path, race: str, label: str) -> Path:
    """An isolated copy of ``base`` for one contender: a git worktree when ``base`` is a git
    repository, else a copy of its files. Kept across a resume."""
    target = base / RACE_DIR / race / label
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    if (base / ".git").exists():
        subprocess.run(
            ["git", "-C", str(base), "worktree", "add", "--detach", str(target)],
            check=True, capture_output=True,
        )  # fmt: skip
    elif base.exists():
        shutil.copytree(base, target, ignore=shutil.ignore_patterns(RACE_DIR))
    else:
        target.mkdir(parents=True)
    return target


async def run_race(node: RaceNode, ctx: Context, env: Env) -> dict[str, Any]:
    """Run the contenders in parallel; the first to pass the check wins (the rest are
    cancelled when ``cancel_rest``), or a judge picks among all the results."""
    outputs: dict[str, Any] = {}
    places: dict[str, Path] = {}
    winner: str | None = None
    tasks: dict[str, asyncio.Task[None]] = {}

    async def contend(contender: RoleNode) -> None:
        nonlocal winner
        label = local_of(contender.name)
        places[label] = prepare_workspace(ctx.workspace, node.name, label)
        own = dataclasses.replace(ctx, node=contender.name, workspace=places[label])
        outputs[label] = await env.run_unit(
            contender.name, contender, own, parent=node.name, key=label
        )
        if node.check is not None:
            passed = bool(await node.check(outputs[label], own))
            env.update(contender.name, check_passed=passed)
            if passed and winner is None:
                winner = label
                if node.cancel_rest:
                    for other, task in tasks.items():
                        if other != label:
                            task.cancel()

    try:
        async with asyncio.TaskGroup() as group:
            for contender in node.contenders:
                tasks[local_of(contender.name)] = group.create_task(contend(contender))
    except* Exception as failures:
        if winner is None and not outputs:
            raise NodeError(
                f"race {node.name!r}: every contender failed ({failures.exceptions[0]})"
            ) from None
    if node.judge is not None and winner is None:
        winner = await _judge(node, ctx, env, outputs)
    if winner is None:
        raise NodeError(
            f"race {node.name!r}: no contender passed the check; results are kept in the "
            "ledger, fix the check or the contenders and resume"
        )
    _adopt(places[winner], ctx.workspace)
    env.update(node.name, winner=winner)
    return {"winner": winner, "output": outputs[winner]}


async def _judge(node: RaceNode, ctx: Context, env: Env, outputs: dict[str, Any]) -> str:
    assert node.judge is not None
    judged = dataclasses.replace(ctx, node=node.judge.name, vars={"contenders": outputs})
    verdict = await env.run_unit(node.judge.name, node.judge, judged, parent=node.name,
                                 key=json.dumps(sorted(outputs)))  # fmt: skip
    choice = verdict.get("winner") if isinstance(verdict, dict) else str(verdict).strip()
    if choice not in outputs:
        raise NodeError(
            f"race {node.name!r}: the judge chose {choice!r}, which is not one of "
            f"{', '.join(outputs)}; make the judge answer with a contender's name"
        )
    return str(choice)


def _adopt(source: Path, workspace: Path) -> None:
    """Bring the winner's files into the shared workspace."""
    if source.exists():
        shutil.copytree(source, workspace, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(RACE_DIR, ".git"))  # fmt: skip
