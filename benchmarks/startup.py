"""Start-up time of ``import flowgraph`` and of the CLI commands that call no model.

    python benchmarks/startup.py [--quick]

Each figure is the wall time of a fresh subprocess (interpreter start included), the best of N
after one untimed warm-up that fills the filesystem cache and writes the bytecode caches. The
"imports SDK" column runs the same command once more under ``python -X importtime`` and says
whether the ``anthropic`` package got imported: commands that call no model must not pay for it.
``python -c "import anthropic"`` is measured first, for scale.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 0.5  # seconds
PYTHON = sys.executable

TINY_GRAPH = '''\
"""A tiny graph of function steps: no model is called."""

from flowgraph import Context, Graph

graph = Graph("tiny")


@graph.step()
async def fetch(ctx: Context) -> dict[str, int]:
    return {"n": 3}


@graph.step(after=["fetch"])
async def double(ctx: Context) -> int:
    return ctx.outputs["fetch"]["n"] * 2
'''

# `-X importtime` writes "import time: self | cumulative | name"; the SDK's top package line.
_SDK_LINE = re.compile(r"^import time:.*\|\s*anthropic\s*$", re.MULTILINE)


@dataclass
class Case:
    label: str
    argv: list[str]  # what is timed
    probe: str  # python code doing the same, run under -X importtime
    target: bool = True  # checked against TARGET (False: the SDK itself, for scale)


def env() -> dict[str, str]:
    """The caller's environment, with bytecode caching on (as after a pip install) and the
    checkout importable first."""
    child = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    child["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), child.get("PYTHONPATH")]))
    return child


def flowgraph_command() -> list[str]:
    """The installed console script beside this interpreter, else ``python -m flowgraph.cli``."""
    script = Path(PYTHON).parent / "flowgraph"
    if script.exists():
        return [str(script)]
    found = shutil.which("flowgraph")
    if found:
        return [found]
    return [PYTHON, "-c", "import sys; from flowgraph.cli import main; main()"]


def cli_probe(args: list[str]) -> str:
    argv = ["flowgraph", *args]
    return f"import sys; sys.argv = {argv!r}; from flowgraph.cli import main; main()"


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, env=env(), cwd=ROOT, check=False)


def best_time(argv: list[str], reps: int) -> float:
    done = run(argv)  # warm-up: filesystem cache, .pyc files
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr[-500:]}")
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        run(argv)
        best = min(best, time.perf_counter() - t0)
    return best


def imports_sdk(code: str) -> bool:
    done = run([PYTHON, "-X", "importtime", "-c", code])
    if done.returncode != 0:
        raise RuntimeError(f"probe {code!r} exited {done.returncode}: {done.stderr[-500:]}")
    return _SDK_LINE.search(done.stderr) is not None


def make_run(workdir: Path, cli: list[str]) -> tuple[Path, Path]:
    """Write the tiny graph file and finish one run of it with ``flowgraph run``."""
    graph_file = workdir / "tiny.py"
    graph_file.write_text(TINY_GRAPH, encoding="utf-8")
    run_dir = workdir / "run"
    done = run([*cli, "run", str(graph_file), "--run-dir", str(run_dir)])
    if done.returncode != 0 or not (run_dir / "ledger.json").exists():
        raise RuntimeError(f"flowgraph run failed ({done.returncode}): {done.stderr[-500:]}")
    return graph_file, run_dir


def cases(cli: list[str], graph_file: Path, run_dir: Path) -> list[Case]:
    out = [
        Case(
            'python -c "import anthropic"',
            [PYTHON, "-c", "import anthropic"],
            "import anthropic",
            False,
        ),
        Case(
            'python -c "import flowgraph"', [PYTHON, "-c", "import flowgraph"], "import flowgraph"
        ),
        Case("flowgraph --help", [*cli, "--help"], cli_probe(["--help"])),
    ]
    for label, args in (
        ("flowgraph status DIR", ["status", str(run_dir)]),
        ("flowgraph status DIR --json", ["status", str(run_dir), "--json"]),
        ("flowgraph show FILE", ["show", str(graph_file)]),
        ("flowgraph cost DIR", ["cost", str(run_dir)]),
    ):
        out.append(Case(label, [*cli, *args], cli_probe(args)))
    return out


def has_command(cli: list[str], name: str) -> bool:
    text = run([*cli, "--help"]).stdout
    return re.search(rf"^\W*{name}\s", text, re.MULTILINE) is not None


def print_table(rows: list[list[str]]) -> None:
    head = ["command", "best wall", "target", "", "imports SDK", ""]
    cols = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, cols, strict=True)).rstrip())


def main(quick: bool) -> None:
    reps = 2 if quick else 5
    cli = flowgraph_command()
    print(f"flowgraph start-up benchmark — Python {platform.python_version()} ({sys.platform})")
    print(f"best of {reps} fresh subprocesses after one warm-up; wall time includes interpreter")
    print("start-up. bytecode caching on in the children (PYTHONDONTWRITEBYTECODE dropped), as")
    print(f"after a pip install. CLI: {' '.join(Path(c).name for c in cli[:1])} (console script).")
    print("'imports SDK': `anthropic` appears in `python -X importtime` of the same command.\n")
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="flowgraph-startup-", dir="/tmp") as tmp:
        graph_file, run_dir = make_run(Path(tmp), cli)
        cost_exists = has_command(cli, "cost")
        for case in cases(cli, graph_file, run_dir):
            if case.label.startswith("flowgraph cost") and not cost_exists:
                rows.append([case.label, "n/a (no cost command yet)", "", "", "", ""])
                continue
            seconds = best_time(case.argv, reps)
            wall = f"{seconds:.3f} s"
            sdk = imports_sdk(case.probe)  # on the SDK row, this checks the detector itself
            if not case.target:
                rows.append([case.label, wall, "(scale)", "", "yes" if sdk else "no", ""])
                continue
            fast = "PASS" if seconds < TARGET else "MISS"
            lean = "MISS" if sdk else "PASS"
            rows.append([case.label, wall, f"< {TARGET} s", fast, "yes" if sdk else "no", lean])
    print_table(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="best of 2 instead of 5")
    args = parser.parse_args()
    main(args.quick)
