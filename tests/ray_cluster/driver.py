"""The distributed tests' driver: run inside a loopback-only network namespace (and its own PID
namespace), it starts a two-node Ray cluster (a head and a second node, each its own `ray start`
process group with a custom resource), the emulator, and each scenario, and writes what it saw
to OUT/report.json for tests/test_distributed.py to check. It stops the cluster by process
group id (never `ray stop`, which kills every Ray process on the machine by name).

    python driver.py OUT
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from graphs import MODEL, fanout, item_of, placed, reply_for, slow_reply_for, steered  # noqa: E402

from flowgraph import Ledger, RunOptions  # noqa: E402
from flowgraph.distributed import RayExecutor  # noqa: E402
from flowgraph.ledger.inbox import post  # noqa: E402  (what `flowgraph steer` calls)
from flowgraph.testing.cluster import LocalRayCluster  # noqa: E402
from flowgraph.testing.emulator import Emulator  # noqa: E402

PORT = 6391
ADDRESS = f"127.0.0.1:{PORT}"
FLOWGRAPH = [str(Path(sys.executable).parent / "flowgraph")]


def nodes_by_resource(executor: RayExecutor) -> dict[str, str]:
    """Ray node id -> the custom resource that names it."""
    ray = executor._ray
    found = {}
    for node in ray.nodes():
        for name in ("head_node", "second_node"):
            if name in node["Resources"]:
                found[node["NodeID"]] = name
    return found


def shape(run_dir: Path) -> dict[str, Any]:
    """What a run's ledger says, without what differs between any two runs."""
    doc = Ledger.read(run_dir)
    return {
        "status": str(doc.status),
        "records": {n: {"status": str(r.status), "kind": r.kind, "parent": r.parent,
                        "turns": r.turns, "tool_calls": r.tool_calls, "model": r.model,
                        "fields": sorted(r.__dataclass_fields__)}
                    for n, r in doc.nodes.items()},
    }  # fmt: skip


def requests_per_item(emu: Emulator) -> dict[str, int]:
    counts: dict[str, int] = {}
    for request in emu.requests:
        if request.path != "/v1/messages" or not isinstance(request.body, dict):
            continue
        first = request.body["messages"][0]["content"]
        text = first if isinstance(first, str) else first[0]["text"]
        item = text.split("Summarise ", 1)[1].split("\n", 1)[0]
        counts[item] = counts.get(item, 0) + 1
    return counts


def items_of(run_dir: Path) -> dict[str, Any]:
    doc = Ledger.read(run_dir)
    return {n: r for n, r in doc.nodes.items() if n.startswith("notes[")}


# -- scenarios --------------------------------------------------------------------------------


async def map_on_both_nodes(out: Path, executor: RayExecutor) -> dict[str, Any]:
    """200 role items locally, then on the cluster with max_concurrent=4: same results, same
    ledger shape, items on both nodes, never more than 4 requests at the emulator."""
    report: dict[str, Any] = {}
    for where in ("local", "ray"):
        # On the cluster each turn's answer goes to a worker's loop and its next request comes
        # back before it can take a slot; with 20 ms answers those round trips, on a loaded
        # two-core CI machine, once kept the peak at 3. 100 ms answers keep four slots busy.
        with Emulator({MODEL: reply_for(2)}, latency=0.02 if where == "local" else 0.1) as emu:
            os.environ["EMU_URL"] = emu.base_url
            graph = fanout(200, limit=4)
            began = time.monotonic()
            result = await graph.run(
                None,
                RunOptions(
                    run_dir=out / f"map-{where}", executor=None if where == "local" else executor
                ),
            )
            report[where] = {
                "status": str(result.status),
                "outputs": result.outputs["notes"],
                "seconds": time.monotonic() - began,
                "peak_in_flight": emu.peak_in_flight.get(MODEL, 0),
                "requests": len(emu.requests),
                "shape": shape(out / f"map-{where}"),
            }
    names = nodes_by_resource(executor)
    placed: dict[str, int] = {}
    for record in items_of(out / "map-ray").values():
        where = names.get(record.placed or "", str(record.placed))
        placed[where] = placed.get(where, 0) + 1
    report["ray"]["placed"] = placed
    report["ray"]["nodes"] = names
    return report


async def resources(out: Path) -> dict[str, Any]:
    """Work that asks for a node's custom resource runs there: the steps on the second node,
    the role loops on the head (a second executor sharing this process's connection)."""
    asks = {"squares": {"second_node": 1}, "notes": {"head_node": 1}}
    executor = RayExecutor(ADDRESS, resources=asks, on_coordinator={"listing"})
    await executor.start()
    with Emulator({MODEL: reply_for(1)}) as emu:
        os.environ["EMU_URL"] = emu.base_url
        result = await placed().run(None, RunOptions(run_dir=out / "placed", executor=executor))
    names = nodes_by_resource(executor)
    where: dict[str, list[str]] = {}
    for name, record in Ledger.read(out / "placed").nodes.items():
        if "[" in name:
            where.setdefault(name.split("[")[0], []).append(names.get(record.placed or "", "?"))
    executor.close()
    listing = Ledger.read(out / "placed").nodes["listing"].placed
    return {"status": str(result.status), "where": where, "listing_placed": listing}


async def budget(out: Path, executor: RayExecutor) -> dict[str, Any]:
    """A budget that covers about a quarter of the items: the run stops spending there."""
    with Emulator({MODEL: reply_for(1)}, latency=0.02) as emu:
        os.environ["EMU_URL"] = emu.base_url
        probe = await fanout(4, limit=None).run(None, run_dir=out / "budget-probe")
        per_call = max(r.cost_usd or 0.0 for r in items_of(out / "budget-probe").values())
        cap = per_call * 20
        result = await fanout(40, limit=None, budget=cap).run(
            None, RunOptions(run_dir=out / "budget", executor=executor)
        )
        records = items_of(out / "budget")
        return {
            "probe": str(probe.status),
            "status": str(result.status),
            "cap": cap,
            "per_call": per_call,
            "spent": sum(r.cost_usd or 0.0 for r in records.values()),
            "passed": sum(1 for r in records.values() if r.status == "passed"),
            "workers": 2,
        }


async def node_dies(out: Path, executor: RayExecutor, cluster: LocalRayCluster) -> dict[str, Any]:
    """SIGKILL of the second node's processes while 60 three-turn items run."""
    run_dir = out / "node-dies"
    with Emulator({MODEL: reply_for(3)}, latency=0.1) as emu:
        os.environ["EMU_URL"] = emu.base_url
        graph = fanout(60, limit=4)
        run = asyncio.create_task(graph.run(None, RunOptions(run_dir=run_dir, executor=executor)))
        passed_at_kill: list[str] = []
        running_at_kill: list[str] = []
        while not run.done():
            await asyncio.sleep(0.1)
            items = items_of(run_dir) if Ledger.exists(run_dir) else {}
            names = nodes_by_resource(executor)
            on_second = [n for n, r in items.items() if names.get(r.placed or "") ==
                         "second_node" and r.status == "running"]  # fmt: skip
            passed = [n for n, r in items.items() if r.status == "passed"]
            # The ledger on disk lags the coordinator: an item it shows running may have
            # finished already. One the emulator has not yet been asked all three turns of
            # cannot (each answer waits 0.1 s), so only those must move to the head.
            asked = requests_per_item(emu)
            unfinished = [n for n in on_second if asked.get(_item(n), 0) < 3]
            if len(passed) >= 10 and unfinished:
                passed_at_kill = passed
                running_at_kill = unfinished
                cluster.kill("second_node")
                break
        result = await run
        counts = requests_per_item(emu)
        final = items_of(run_dir)
        return {
            "status": str(result.status),
            "passed_at_kill": passed_at_kill,
            "running_on_second_at_kill": running_at_kill,
            "requests": {n: counts.get(_item(n), 0) for n in final},
            "turns": {n: r.turns for n, r in final.items()},
            "statuses": {n: str(r.status) for n, r in final.items()},
            "placed_after": {
                n: nodes_by_resource(executor).get(r.placed or "", r.placed)
                for n, r in final.items()
            },
        }


def _item(record: str) -> str:
    return f"item {record[len('notes[') : -1]}"


def coordinator_dies(out: Path, executor: RayExecutor) -> dict[str, Any]:
    """SIGKILL of the coordinator (`flowgraph run --ray`) mid-run; a plain `flowgraph resume`
    goes back to the cluster the run recorded."""
    run_dir = out / "coordinator-dies"
    graph = f"{HERE / 'graphs.py'}:fanout"
    with Emulator({MODEL: reply_for(3)}, latency=0.1) as emu:
        env = {**os.environ, "EMU_URL": emu.base_url}
        first = subprocess.Popen([*FLOWGRAPH, "run", graph, "--run-dir", str(run_dir), "--ray",
                                  ADDRESS, "--input", "n:=40"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        at_kill: dict[str, Any] = {}
        deadline = time.monotonic() + 120
        while first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
            if not Ledger.exists(run_dir):
                continue
            items = items_of(run_dir)
            passed = [n for n, r in items.items() if r.status == "passed"]
            journaled = [
                n
                for n, r in items.items()
                if r.status == "running" and r.conversation_at is not None
            ]
            if len(passed) >= 8 and journaled:
                first.kill()
                at_kill = {"passed": passed, "journaled": journaled}
                break
        first.wait()
        killed = first.returncode
        before = requests_per_item(emu)
        resumed = subprocess.run([*FLOWGRAPH, "resume", str(run_dir)], env=env,
                                 capture_output=True, text=True, timeout=300)  # fmt: skip
        after = requests_per_item(emu)
        final = items_of(run_dir)
        names = nodes_by_resource(executor)
        placed_after = {_item(n): names.get(r.placed or "", r.placed) for n, r in final.items()}
        return {
            "settings": Ledger.read(run_dir).settings,
            "placed_after": placed_after,
            "killed_rc": killed,
            "at_kill": at_kill,
            "resume_rc": resumed.returncode,
            "resume_err": resumed.stderr[-3000:],
            "status": str(Ledger.read(run_dir).status),
            "requests_before": before,
            "requests_after": after,
            "turns": {_item(n): r.turns for n, r in final.items()},
            "statuses": {_item(n): str(r.status) for n, r in final.items()},
        }


def batch_interrupted(out: Path) -> dict[str, Any]:
    """`flowgraph batch --ray` over 50 inputs, stopped (SIGTERM) part way, run again."""
    inputs = out / "inputs.jsonl"
    log = out / "batch.log"
    inputs.write_text("".join(json.dumps({"n": n, "log": str(log)}) + "\n" for n in range(50)))
    runs = out / "batch-runs"
    env = dict(os.environ)
    command = [*FLOWGRAPH, "batch", f"{HERE / 'graphs.py'}:batch", "--inputs", str(inputs),
               "--runs-dir", str(runs), "--ray", ADDRESS, "--max-runs", "8"]  # fmt: skip
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
        done = log.read_text().count("\n") if log.exists() else 0
        if done >= 12:
            first.send_signal(signal.SIGTERM)
            break
    _first_out, first_err = first.communicate(timeout=120)
    passed_first = sorted(
        p.name for p in runs.iterdir() if Ledger.exists(p) and Ledger.read(p).status == "passed"
    )
    passed_inputs = [str(Ledger.read(runs / name).input["n"]) for name in passed_first]
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    lines = log.read_text().split()
    return {
        "first_rc": first.returncode,
        "first_err": first_err[-2000:],
        "passed_first": passed_first,
        "passed_inputs": passed_inputs,
        "second_rc": second.returncode,
        "second_out": second.stdout,
        "second_err": second.stderr[-2000:],
        "runs": sorted(p.name for p in runs.iterdir()),
        "statuses": {p.name: str(Ledger.read(p).status) for p in runs.iterdir()},
        "log": lines,
    }


def auto(out: Path) -> dict[str, Any]:
    """`flowgraph run --ray auto`: a local cluster of its own, started and stopped with it."""
    log = out / "auto.log"
    # Its session files in a short directory of ours, not the machine's /tmp/ray.
    temp = tempfile.mkdtemp(prefix="fgauto")
    done = subprocess.run([*FLOWGRAPH, "run", f"{HERE / 'graphs.py'}:batch", "--input", "n=7",
                           "--input", f"log={log}", "--run-dir", str(out / "auto"), "--ray",
                           "auto"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "RAY_TMPDIR": temp})  # fmt: skip
    shutil.rmtree(temp, ignore_errors=True)
    doc = Ledger.read(out / "auto") if Ledger.exists(out / "auto") else None
    return {"rc": done.returncode, "err": done.stderr[-3000:],
            "status": str(doc.status) if doc else None,
            "output": doc.nodes["work"].output if doc else None,
            "placed": doc.nodes["work"].placed if doc else None}  # fmt: skip


def evaluate(out: Path) -> dict[str, Any]:
    """`flowgraph eval --ray`: the example suite, on the cluster and locally."""
    suite = str(HERE.parent.parent / "examples" / "eval_advisor.py")
    found = {}
    for where, extra in (("local", []), ("ray", ["--ray", ADDRESS])):
        done = subprocess.run([*FLOWGRAPH, "eval", suite, "--out", str(out / f"eval-{where}"),
                               "--json", *extra], capture_output=True, text=True,
                              timeout=300)  # fmt: skip
        rows = json.loads(done.stdout)["configs"] if done.returncode == 0 else []
        found[where] = {"rc": done.returncode, "err": done.stderr[-2000:],
                        "rates": {r["config"]: r["completion_rate"] for r in rows}}  # fmt: skip
    placed = [r.placed for p in (out / "eval-ray").rglob("ledger.json")
              for r in Ledger.read(p.parent).nodes.values() if r.placed]  # fmt: skip
    found["placed_records"] = len(placed)
    return found


STEER = "Mention the colour blue."
SAID = f"New instruction from a person: {STEER}"


def _turn_of(body: dict[str, Any]) -> int:
    return 1 + sum(1 for m in body["messages"] if m["role"] == "assistant")


def _asked(emu: Emulator) -> list[tuple[str, int, int]]:
    """Each model request: its item, its turn, and how often it carries the steering text."""
    return [(item_of(r.body), _turn_of(r.body), json.dumps(r.body).count(SAID))
            for r in emu.requests
            if r.path == "/v1/messages" and isinstance(r.body, dict)]  # fmt: skip


async def _until(check: Callable[[], bool], run: asyncio.Task[Any], timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if run.done() or time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def steer_on_worker(out: Path) -> dict[str, Any]:
    """A four-turn role node on the second node (it asks for that node's resource), steered
    through the inbox (as `flowgraph steer` does) while its first model call is in flight."""
    executor = RayExecutor(ADDRESS, resources={"notes": {"second_node": 1}},
                           on_coordinator={"listing"})  # fmt: skip
    await executor.start()
    run_dir, markers = out / "steer", out / "steer-markers"
    markers.mkdir()
    with Emulator({MODEL: slow_reply_for(4, str(markers))}, latency=1.0) as emu:
        os.environ["EMU_URL"] = emu.base_url
        run = asyncio.create_task(
            steered(1).run(None, RunOptions(run_dir=run_dir, executor=executor))
        )
        sent = await _until(lambda: any(t == 1 for _, t, _ in _asked(emu)), run)
        if sent:
            post(run_dir, "steer", "notes[0]", STEER)
        result = await run
        asked = _asked(emu)
    record = Ledger.read(run_dir).nodes["notes[0]"]
    placed = nodes_by_resource(executor).get(record.placed or "", record.placed)
    executor.close()
    return {"status": str(result.status), "sent": sent, "placed": placed,
            "steering": record.steering, "asked": [[t, n] for _, t, n in asked]}  # fmt: skip


async def steer_worker_lost(out: Path, cluster: LocalRayCluster) -> dict[str, Any]:
    """A message handed to a loop on the second node with its turn-2 answer; the node is
    killed while that turn's tool runs (it waits for the driver: before the loop journaled
    the message). The loop dispatched again must still get it, once, at its next turn."""
    cluster.add("second_node")  # back after node_dies
    executor = RayExecutor(ADDRESS, on_coordinator={"listing"})  # new actors: on both nodes
    await executor.start()
    names = nodes_by_resource(executor)
    run_dir, markers = out / "steer-lost", out / "steer-lost-markers"
    markers.mkdir()
    found: dict[str, Any] = {}
    with Emulator({MODEL: slow_reply_for(4, str(markers), hold_at=2)}, latency=1.0) as emu:
        os.environ["EMU_URL"] = emu.base_url
        run = asyncio.create_task(
            steered(2).run(None, RunOptions(run_dir=run_dir, executor=executor))
        )

        def placed() -> bool:  # an item on the second node, or both items placed elsewhere
            items = items_of(run_dir) if Ledger.exists(run_dir) else {}
            if any(r.placed and r.placed not in names for r in items.values()):
                names.update(nodes_by_resource(executor))  # a node the cluster listed late
            seconds = [n for n, r in items.items() if names.get(r.placed or "") == "second_node"]
            found["record"] = seconds[0] if seconds else None
            return bool(seconds) or (len(items) == 2 and all(r.placed for r in items.values()))

        found["missed"] = "no item was placed on the second node"
        if await _until(placed, run) and found["record"] is not None:
            record = found["record"]
            item = _item(record)
            found["missed"] = "its turn 2 was never asked"
            if await _until(lambda: (item, 2) in {(i, t) for i, t, _ in _asked(emu)}, run):
                post(run_dir, "steer", record, STEER)  # taken with the turn-2 answer
                found["missed"] = "its turn-2 tool never started"
                if await _until(lambda: (markers / f"{item} turn 2").exists(), run):
                    found["at_kill"] = Ledger.read(run_dir).nodes[record].steering
                    cluster.kill("second_node")
        (markers / "release").touch()  # the turn-2 tools go on: the one dispatched again too
        result = await run
        asked = _asked(emu)
    executor.close()
    record = found.get("record")
    final = Ledger.read(run_dir).nodes[record] if record else None
    return {"status": str(result.status), "record": record, "at_kill": found.get("at_kill"),
            "missed": found["missed"], "steering": final.steering if final else None,
            "placed_after": names.get(final.placed or "", final.placed) if final else None,
            "asked": [[t, n] for i, t, n in asked if record and i == _item(record)]}  # fmt: skip


def unreachable(out: Path) -> dict[str, Any]:
    """`--ray` at an address where no cluster listens."""
    never = out / "never-made"
    done = subprocess.run([*FLOWGRAPH, "run", f"{HERE / 'graphs.py'}:batch", "--input", "n=1",
                           "--input", "log=x", "--run-dir", str(never), "--ray", "127.0.0.1:1"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    return {"rc": done.returncode, "err": done.stderr, "made": never.exists()}


async def main(out: Path) -> None:
    report: dict[str, Any] = {}
    paths = [str(HERE), os.environ.get("PYTHONPATH", "")]
    cluster = LocalRayCluster(PORT, env={"PYTHONPATH": os.pathsep.join(p for p in paths if p)})
    try:
        began = time.monotonic()
        cluster.add("head_node", head=True)
        cluster.add("second_node")
        report["cluster_start_s"] = time.monotonic() - began
        executor = RayExecutor(ADDRESS)
        await executor.start()
        scenarios: list[tuple[str, Callable[[], Any]]] = [
            ("unreachable", lambda: unreachable(out)),
            ("auto", lambda: auto(out)),
            ("eval", lambda: evaluate(out)),
            ("map", lambda: map_on_both_nodes(out, executor)),
            ("budget", lambda: budget(out, executor)),
            ("resources", lambda: resources(out)),
            ("batch", lambda: batch_interrupted(out)),
            ("coordinator", lambda: coordinator_dies(out, executor)),
            ("steer", lambda: steer_on_worker(out)),
            ("node_dies", lambda: node_dies(out, executor, cluster)),  # one node after
            ("steer_lost", lambda: steer_worker_lost(out, cluster)),  # adds it back, kills it
        ]
        wanted = set(os.environ.get("SCENARIOS", "").split(",")) - {""}
        for name, scenario in scenarios:
            if wanted and name not in wanted:
                continue
            began = time.monotonic()
            try:
                value = scenario()
                report[name] = await value if asyncio.iscoroutine(value) else value
            except Exception:
                report[name] = {"crashed": traceback.format_exc()}
            report[name + "_s"] = time.monotonic() - began
            (out / "report.json").write_text(json.dumps(report, indent=1, default=str))
        executor.close()
    finally:
        cluster.stop()
        (out / "report.json").write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
