"""The bad-input catalogue: every user mistake gets one line, exit code 2, and no changed file.

Each case drives the real ``flowgraph`` command in a subprocess, the way a user would: a graph
file with a mistake in it, a run directory whose ledger was damaged, a wrong argument. For each we
check that the command

* exits with code 2,
* prints exactly one line on stderr, starting with ``error: ``, and no traceback anywhere,
* names what is wrong (a per-case substring: the node, file, field...),
* says how to fix it (a per-case hint, or else one of the usual fix verbs),
* leaves every file under the test directory byte-for-byte unchanged (nothing added, removed or
  rewritten; only ``__pycache__`` from importing graph files is ignored).

Valid run directories are made in-process (``load_graph`` + ``run_sync``), which is much cheaper
than a subprocess and records the graph's source in the ledger exactly as ``flowgraph run`` does.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import CliResult
from filelock import FileLock

from flowgraph.cli.launch import load_graph

FIX_WORDS = (
    "use", "add", "pass", "remove", "rename", "declare", "start", "restore", "upgrade", "wait",
    "fix", "give", "annotate", "keep", "name one", "define", "pick", "stop",
)  # fmt: skip
FIX_RE = re.compile(r"\b(?:" + "|".join(map(re.escape, FIX_WORDS)) + r")\b", re.IGNORECASE)

HEADER = """\
from flowgraph import Context, Graph, Role, tool
from flowgraph.testing import ScriptedModel

writer = Role("writer", "You write short reports.", model="haiku")

async def gather(ctx: Context) -> str:
    return "notes"
"""

TINY = """\
from flowgraph import Context, Graph, Role
from flowgraph.testing import ScriptedModel

tiny = Graph("tiny", inputs=["topic"], client=ScriptedModel(default="a short report"))
writer = Role("writer", "You write short reports.", model="haiku")

async def gather(ctx: Context) -> str:
    return "notes on " + ctx.input["topic"]

tiny.node("gather", gather)
tiny.node("write", writer, "Write a report on {topic} from these notes: {gather}", after=["gather"])
"""

OTHER = """\
from flowgraph import Context, Graph

other = Graph("other", inputs=["topic"])

async def gather(ctx: Context) -> str:
    return "other notes"

other.node("gather", gather)
"""

# -- helpers ----------------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (path -> bytes) and directory (path -> None) under ``root``, minus __pycache__."""
    found: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        base = Path(dirpath)
        for d in dirnames:
            found[str((base / d).relative_to(root)) + "/"] = None
        for f in filenames:
            path = base / f
            # Never open a FIFO (it would block) or a socket: record that it is there.
            regular = path.is_file() or not path.exists()
            found[str(path.relative_to(root))] = path.read_bytes() if regular else b"<special>"
    return found


def write(tmp: Path, name: str, body: str) -> str:
    (tmp / name).write_text(textwrap.dedent(body))
    return name


def graph_file(tmp: Path, name: str, body: str) -> str:
    """A graph file: the common header (writer role, gather step) plus ``body``."""
    return write(tmp, name, HEADER + textwrap.dedent(body))


def make_run(tmp: Path, run: str = "run") -> Path:
    """A finished, valid run of the tiny graph, made in-process like `flowgraph run` would."""
    write(tmp, "tiny.py", TINY)
    graph = load_graph(str(tmp / "tiny.py"))
    result = graph.run_sync({"topic": "owls"}, run_dir=tmp / run)
    assert result.ok, result
    return tmp / run


def ledger_json(run_dir: Path) -> dict:
    return json.loads((run_dir / "ledger.json").read_text())


def set_ledger(run_dir: Path, data: object) -> None:
    (run_dir / "ledger.json").write_text(json.dumps(data, indent=2))


def edit_ledger(run_dir: Path, change: Callable[[dict], None]) -> None:
    data = ledger_json(run_dir)
    change(data)
    set_ledger(run_dir, data)


# -- the catalogue ----------------------------------------------------------------------------

Setup = Callable[[Path, ExitStack], list[str]]


@dataclass(frozen=True)
class Case:
    id: str
    setup: Setup
    names: tuple[str, ...]  # substrings that name what is wrong
    hint: str | None = None  # a substring that says how to fix; None: any of FIX_WORDS


CASES: list[Case] = []


def case(id: str, *names: str, hint: str | None = None) -> Callable[[Setup], Setup]:
    def add(setup: Setup) -> Setup:
        CASES.append(Case(id, setup, names, hint))
        return setup

    return add


# graph definition errors, in graph files ---------------------------------------------------

CYCLE = """
    g = Graph("loopy")
    async def a(ctx: Context) -> str: return "a"
    async def b(ctx: Context) -> str: return "b"
    g.node("a", a, after=["b"])
    g.node("b", b, after=["a"])
"""


@case("cycle-run", "cycle", "loopy", "a -> b", hint="remove")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return ["run", graph_file(tmp, "bad_cycle.py", CYCLE)]


@case("cycle-show", "cycle", "loopy", "a -> b", hint="remove")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return ["show", graph_file(tmp, "bad_cycle.py", CYCLE)]


@case("unknown-dependency", "'report'", "'nope'", hint="nodes are")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return [
        "run",
        graph_file(
            tmp,
            "bad_dep.py",
            """
        g = Graph("deps")
        g.node("gather", gather)
        g.node("report", writer, "Summarise {gather}", after=["gather", "nope"])
    """,
        ),
    ]


@case("self-dependency", "'gather'", "itself", hint="remove")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return [
        "show",
        graph_file(
            tmp,
            "bad_self.py",
            """
        g = Graph("selfish")
        g.node("gather", gather, after=["gather"])
    """,
        ),
    ]


@case("duplicate-node", "'gather'", "twice", hint="give each node")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return [
        "run",
        graph_file(
            tmp,
            "bad_dup.py",
            """
        g = Graph("dups")
        g.node("gather", gather)
        g.node("gather", writer, "Write")
    """,
        ),
    ]


@case("invalid-node-name", "'run-tests'", hint="use letters")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return [
        "run",
        graph_file(
            tmp,
            "bad_name.py",
            """
        g = Graph("names")
        g.node("run-tests", gather)
    """,
        ),
    ]


@case("node-named-like-input", "'topic'", "input", hint="rename")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return [
        "run",
        graph_file(
            tmp,
            "bad_clash.py",
            """
        g = Graph("clash", inputs=["topic"])
        g.node("topic", gather)
    """,
        ),
        "--input",
        "topic=owls",
    ]


@case("missing-template-variable", "'report'", "{subject}", hint="declare")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return [
        "run",
        graph_file(
            tmp,
            "bad_var.py",
            """
        g = Graph("vars", inputs=["topic"], client=ScriptedModel())
        g.node("report", writer, "Write about {subject}")
    """,
        ),
        "--input",
        "topic=owls",
    ]


@case("template-field-not-upstream", "'report'", "{gather}", hint="after=['gather']")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return [
        "show",
        graph_file(
            tmp,
            "bad_upstream.py",
            """
        g = Graph("upstream", client=ScriptedModel())
        g.node("gather", gather)
        g.node("report", writer, "Write a report from {gather}")
    """,
        ),
    ]


@case("malformed-template-braces", "'report'", "malformed", hint="{{")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return [
        "run",
        graph_file(
            tmp,
            "bad_braces.py",
            """
        g = Graph("braces", inputs=["topic"], client=ScriptedModel())
        g.node("report", writer, "Write about {topic")
    """,
        ),
        "--input",
        "topic=owls",
    ]


@case("positional-template-field", "'report'", "{}", hint="name an input")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return [
        "show",
        graph_file(
            tmp,
            "bad_positional.py",
            """
        g = Graph("positional")
        g.node("report", writer, "Write about {}")
    """,
        ),
    ]


@case("sync-function-step", "'check'", "not async", hint="async def")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return [
        "run",
        graph_file(
            tmp,
            "bad_sync.py",
            """
        g = Graph("sync")
        def check(ctx: Context) -> str:
            return "ok"
        g.node("check", check)
    """,
        ),
    ]


@case("step-with-task", "'gather'", "task")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return [
        "run",
        graph_file(
            tmp,
            "bad_step_task.py",
            """
        g = Graph("steptask")
        g.node("gather", gather, "Gather the notes")
    """,
        ),
    ]


@case("node-not-role-or-function", "'gather'", "int", hint="a Role or an async function")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return [
        "run",
        graph_file(
            tmp,
            "bad_what.py",
            """
        g = Graph("what")
        g.node("gather", 42)
    """,
        ),
    ]


@case("bad-model-alias", "'report'", "'sonet'", hint="use one of")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return [
        "run",
        graph_file(
            tmp,
            "bad_alias.py",
            """
        g = Graph("alias")
        critic = Role("critic", "You criticise.", model="sonet")
        g.node("report", critic, "Criticise everything")
    """,
        ),
    ]


@case("bad-graph-model-alias", "'alias'", "'opux'", hint="use one of")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return [
        "show",
        graph_file(
            tmp,
            "bad_graph_alias.py",
            """
        g = Graph("alias", model="opux")
        g.node("gather", gather)
    """,
        ),
    ]


@case("bad-fallback-alias", "fallback", "'sonnett'", hint="use one of")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return [
        "run",
        graph_file(
            tmp,
            "bad_fallback.py",
            """
        g = Graph("fallback")
        critic = Role("critic", "You criticise.", fallbacks=["haiku", "sonnett"])
        g.node("report", critic, "Criticise everything")
    """,
        ),
    ]


@case("too-many-fallbacks", "'critic'", "4 fallbacks", hint="keep")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return [
        "run",
        graph_file(
            tmp,
            "bad_fallbacks.py",
            """
        g = Graph("fallbacks")
        critic = Role("critic", "You criticise.",
                      fallbacks=["opus", "sonnet", "haiku", "claude-sonnet-4-6"])
        g.node("report", critic, "Criticise everything")
    """,
        ),
    ]


@case("role-without-task", "'report'", "no task", hint="pass the task")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return [
        "run",
        graph_file(
            tmp,
            "bad_notask.py",
            """
        g = Graph("notask")
        g.node("report", writer)
    """,
        ),
    ]


@case("empty-graph", "'hollow'", "no nodes", hint="add one")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return [
        "run",
        graph_file(
            tmp,
            "bad_empty.py",
            """
        g = Graph("hollow")
    """,
        ),
    ]


@case("graph-without-name", "needs a name", hint="Graph('")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return [
        "show",
        graph_file(
            tmp,
            "bad_noname.py",
            """
        g = Graph("")
    """,
        ),
    ]


@case("max-concurrency-zero", "'busy'", "max_concurrency", hint="at least 1")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return [
        "run",
        graph_file(
            tmp,
            "bad_concurrency.py",
            """
        g = Graph("busy", max_concurrency=0)
        g.node("gather", gather)
    """,
        ),
    ]


@case("tool-unannotated-parameter", "'lookup'", "'query'", hint="annotate")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return [
        "run",
        graph_file(
            tmp,
            "bad_tool.py",
            """
        def lookup(query) -> str:
            return "found"
        g = Graph("tools")
        researcher = Role("researcher", "You research.", tools=[lookup])
        g.node("research", researcher, "Research owls")
    """,
        ),
    ]


@case("graph-file-syntax-error", "broken.py", "line 3")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return [
        "run",
        write(
            tmp,
            "broken.py",
            """\
        from flowgraph import Graph
        g = Graph("broken")
        g.node("a",
    """,
        ),
    ]


@case("graph-file-raises-on-import", "crashing.py", "NameError")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return [
        "run",
        write(
            tmp,
            "crashing.py",
            """\
        from flowgraph import Graph
        g = Graph("crashing", model=DEFAULT_MODEL)
    """,
        ),
    ]


# which graph: files and names ----------------------------------------------------------------


@case("missing-file", "nope.py", hint="pass the path")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return ["run", "nope.py"]


@case("file-without-graph", "helpers.py", "defines no Graph", hint="Graph(")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return [
        "run",
        write(
            tmp,
            "helpers.py",
            """\
        def helper() -> str:
            return "not a graph"
    """,
        ),
    ]


@case("file-with-two-graphs", "pair.py", "first", "second", hint="pair.py:GRAPH")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return [
        "show",
        graph_file(
            tmp,
            "pair.py",
            """
        first = Graph("first")
        first.node("gather", gather)
        second = Graph("second")
        second.node("gather", gather)
    """,
        ),
    ]


@case("unknown-graph-name", "'nosuch'", "tiny", hint="graphs in it")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    write(tmp, "tiny.py", TINY)
    return ["run", "tiny.py:nosuch", "--input", "topic=owls"]


@case("graph-factory-needs-arguments", "factory.py", "factory.py:build")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    write(
        tmp,
        "factory.py",
        """\
        from flowgraph import Context, Graph

        async def gather(ctx: Context) -> str:
            return "notes"

        def build(model: str) -> Graph:
            g = Graph("factory", model=model)
            g.node("gather", gather)
            return g
    """,
    )
    return ["show", "factory.py:build"]


@case("unknown-module", "'nosuch_pkg_xyz'", hint="pass FILE.py")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return ["show", "nosuch_pkg_xyz:graph"]


@case("not-a-python-file", "graph.txt")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return ["show", write(tmp, "graph.txt", TINY)]


@case("show-format-dot", "'dot'", hint="use --format mermaid")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    write(tmp, "tiny.py", TINY)
    return ["show", "tiny.py", "--format", "dot"]


# --input -------------------------------------------------------------------------------------


@case("input-without-equals", "'topic'", hint="KEY=VALUE")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    write(tmp, "tiny.py", TINY)
    return ["run", "tiny.py", "--input", "topic"]


@case("input-without-key", "'=owls'", hint="KEY=VALUE")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    write(tmp, "tiny.py", TINY)
    return ["run", "tiny.py", "--input", "=owls"]


@case("input-undeclared-field", "colour", "'tiny'", hint="its inputs are: topic")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    write(tmp, "tiny.py", TINY)
    return ["run", "tiny.py", "--input", "topic=owls", "--input", "colour=red"]


@case("input-missing-required", "topic", "'tiny'", hint="--input topic=")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    write(tmp, "tiny.py", TINY)
    return ["run", "tiny.py"]


@case("input-bad-json", "topic", "JSON")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    write(tmp, "tiny.py", TINY)
    return ["run", "tiny.py", "--input", "topic:={oops"]


@case("input-differs-from-recorded-run", "owls", hint="without new input")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    make_run(tmp)
    return ["run", "tiny.py", "--run-dir", "run", "--input", "topic=bats"]


# command-line usage (parsed by typer/click) --------------------------------------------------


@case("cli-max-concurrency-zero", "max-concurrency")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    write(tmp, "tiny.py", TINY)
    return ["run", "tiny.py", "--input", "topic=owls", "--max-concurrency", "0"]


@case("cli-unknown-option", "--frobnicate")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    write(tmp, "tiny.py", TINY)
    return ["run", "tiny.py", "--frobnicate"]


@case("cli-resume-without-dir", "run_dir")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return ["resume"]


# run directories -----------------------------------------------------------------------------


@case("run-dir-is-a-file", "notes.txt", "is a file", hint="pass a directory")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    write(tmp, "tiny.py", TINY)
    (tmp / "notes.txt").write_text("my notes\n")
    return ["run", "tiny.py", "--input", "topic=owls", "--run-dir", "notes.txt"]


@case("run-dir-not-empty", "project", "not empty", hint="use a new or empty directory")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    write(tmp, "tiny.py", TINY)
    (tmp / "project").mkdir()
    (tmp / "project" / "main.py").write_text("print('mine')\n")
    return ["run", "tiny.py", "--input", "topic=owls", "--run-dir", "project"]


@case("resume-dir-without-ledger", "empty_run", "ledger.json", hint="start a new run")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    (tmp / "empty_run").mkdir()
    return ["resume", "empty_run"]


@case("resume-missing-dir", "no_such_run", hint="pass the directory")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return ["resume", "no_such_run"]


@case("status-missing-dir", "no_such_run", hint="pass the directory")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    return ["status", "no_such_run"]


@case("resume-journal-without-snapshot", "ledger.json", "events.jsonl", hint="start a new run")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    (run / "ledger.json").unlink()
    return ["resume", "run"]


@case("resume-while-locked", "run", "another flowgraph process", hint="wait")
def _(tmp: Path, stack: ExitStack) -> list[str]:
    run = make_run(tmp)
    lock = FileLock(run / "ledger.lock", timeout=0, thread_local=False)
    stack.enter_context(lock)
    return ["resume", "run"]


@case("run-while-locked", "run", "another flowgraph process", hint="wait")
def _(tmp: Path, stack: ExitStack) -> list[str]:
    run = make_run(tmp)
    lock = FileLock(run / "ledger.lock", timeout=0, thread_local=False)
    stack.enter_context(lock)
    return ["run", "tiny.py", "--run-dir", "run"]


@case("resume-started-from-python", "run", hint="pass --graph")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    edit_ledger(run, lambda d: d.update(source=None))
    return ["resume", "run"]


@case("resume-source-file-gone", "tiny.py", hint="pass")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    make_run(tmp)
    (tmp / "tiny.py").unlink()
    return ["resume", "run"]


# damaged ledgers -----------------------------------------------------------------------------


@case("ledger-truncated", "ledger.json", "not valid JSON", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    raw = (run / "ledger.json").read_bytes()
    (run / "ledger.json").write_bytes(raw[: len(raw) // 2])
    return ["resume", "run"]


@case("ledger-truncated-run", "ledger.json", "not valid JSON", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    raw = (run / "ledger.json").read_bytes()
    (run / "ledger.json").write_bytes(raw[:100])
    return ["run", "tiny.py", "--run-dir", "run"]


@case("ledger-empty", "ledger.json", "empty", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    (run / "ledger.json").write_bytes(b"")
    return ["status", "run"]


@case("ledger-binary", "ledger.json", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    (run / "ledger.json").write_bytes(bytes(range(256)) * 4)
    return ["resume", "run"]


@case("ledger-not-an-object", "ledger.json", "schema_version", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    set_ledger(run, [])
    return ["status", "run"]


@case("ledger-missing-nodes", "ledger.json", "nodes", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    edit_ledger(run, lambda d: d.pop("nodes"))
    return ["resume", "run"]


@case("ledger-missing-run-id", "ledger.json", "run_id", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    edit_ledger(run, lambda d: d.pop("run_id"))
    return ["status", "run", "--json"]


@case("ledger-nodes-wrong-type", "ledger.json", "nodes", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    edit_ledger(run, lambda d: d.update(nodes=["gather", "write"]))
    return ["status", "run"]


@case("ledger-node-status-unknown", "ledger.json", "gather", "status", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    edit_ledger(run, lambda d: d["nodes"]["gather"].update(status="finished-ish"))
    return ["resume", "run"]


@case("ledger-conversation-not-in-journal", "'write'", "byte 0", "events.jsonl", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)  # its first journal line is no step of `write`
    edit_ledger(run, lambda d: d["nodes"]["write"].update(conversation_at=0))
    return ["resume", "run"]


@case("ledger-conversation-past-journal", "'write'", "outside", "events.jsonl", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    edit_ledger(run, lambda d: d["nodes"]["write"].update(conversation_at=10**9))
    return ["status", "run"]


@case("ledger-schema-version-string", "ledger.json", "schema_version", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    edit_ledger(run, lambda d: d.update(schema_version="1"))
    return ["status", "run"]


@case("ledger-newer-schema-resume", "ledger.json", "99", hint="upgrade")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    edit_ledger(run, lambda d: d.update(schema_version=99))
    return ["resume", "run"]


@case("ledger-newer-schema-run", "ledger.json", "99", hint="upgrade")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    edit_ledger(run, lambda d: d.update(schema_version=99))
    return ["run", "tiny.py", "--run-dir", "run"]


@case("ledger-of-another-graph-run", "'tiny'", "'other'", hint="pick a new --run-dir")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    make_run(tmp)
    write(tmp, "other.py", OTHER)
    return ["run", "other.py", "--run-dir", "run"]


@case("ledger-of-another-graph-resume", "'tiny'", "'other'", hint="pick a new --run-dir")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    make_run(tmp)
    write(tmp, "other.py", OTHER)
    return ["resume", "run", "--graph", "other.py"]


@case("ledger-graph-renamed", "'renamed'", "'tiny'", hint="resume it with that graph")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    edit_ledger(run, lambda d: d["graph"].update(name="renamed"))
    return ["resume", "run"]


@case("journal-line-wrong-shape", "events.jsonl")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    with (run / "events.jsonl").open("ab") as fh:
        fh.write(b'{"n": "gather", "f": 3}\n')
    return ["status", "run"]


@case("ledger-negative-journal-offset", "ledger.json", "offset")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    edit_ledger(run, lambda d: d["journal"].update(offset=-5))
    return ["status", "run"]


BIG = """\
from flowgraph import Context, Graph

big = Graph("big")

async def report(ctx: Context) -> str:
    return "x" * 40_000

async def after(ctx: Context) -> int:
    return len(ctx.outputs["report"])

big.node("report", report)
big.node("after", after, after=["report"])
"""


def journal_append(run_dir: Path, data: bytes) -> None:
    with (run_dir / "events.jsonl").open("ab") as fh:
        fh.write(data)


def journal_lines(run_dir: Path) -> int:
    return (run_dir / "events.jsonl").read_bytes().count(b"\n")


# a journal that cannot be trusted ----------------------------------------------------------


@case("journal-bad-line-mid-file", "events.jsonl", "line ", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    journal_append(run, b"{not json\n" + b'{"r": {"current_state": "later"}}\n')
    return ["resume", "run"]


@case("journal-bad-line-status", "events.jsonl", "line ", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    journal_append(run, b'{"n": "gather", "f": 3}\n{"r": {"current_state": "later"}}\n')
    return ["status", "run"]


@case("journal-wrong-type", "events.jsonl", "attempts", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    journal_append(run, b'{"n": "gather", "f": {"attempts": "x"}}\n')
    return ["resume", "run"]


@case("journal-number-as-string", "events.jsonl", "attempts", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    journal_append(run, b'{"n": "gather", "f": {"attempts": "3"}}\n')
    return ["status", "run"]


@case("journal-unknown-field", "events.jsonl", "bogus", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    journal_append(run, b'{"n": "gather", "f": {"bogus": 1}}\n')
    return ["resume", "run"]


@case("journal-wipes-nodes", "events.jsonl", "nodes", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    journal_append(run, b'{"r": {"nodes": {}}}\n')
    return ["resume", "run"]


@case("journal-sets-run-id", "events.jsonl", "run_id", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    journal_append(run, b'{"r": {"run_id": "someone-else"}}\n')
    return ["status", "run"]


@case("journal-bogus-status", "events.jsonl", "status", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    journal_append(run, b'{"n": "gather", "f": {"status": "finished-ish"}}\n')
    return ["resume", "run"]


@case("journal-call-without-node", "events.jsonl", "neither", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    journal_append(run, b'{"l": {"kind": "executor"}, "r": {}}\n')
    return ["status", "run"]


@case("journal-call-string", "events.jsonl", "l", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    journal_append(run, b'{"n": "gather", "f": {}, "l": "fast"}\n')
    return ["resume", "run"]


@case("journal-node-and-run", "events.jsonl", "neither", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    journal_append(run, b'{"n": "gather", "f": {}, "r": {}}\n')
    return ["status", "run"]


@case("journal-not-utf8", "events.jsonl", "line ", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    journal_append(run, b'{"r": {"current_state": "\xff\xfe"}}\n')
    return ["resume", "run"]


@case("journal-nul-bytes", "events.jsonl", "line ", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    journal_append(run, b'\x00\x00{"r": {}}\x00\n')
    return ["status", "run"]


@case("journal-deeply-nested", "events.jsonl", "nested too deeply", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    journal_append(run, b'{"r": {"current_state": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}\n")
    return ["resume", "run"]


@case("journal-missing", "events.jsonl", "missing", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    (run / "events.jsonl").unlink()
    return ["resume", "run"]


@case("journal-shorter-than-snapshot", "events.jsonl", "shorter", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    raw = (run / "events.jsonl").read_bytes()
    (run / "events.jsonl").write_bytes(raw[: len(raw) // 2])
    return ["status", "run"]


@case("journal-is-a-directory", "events.jsonl", "directory")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    (run / "events.jsonl").unlink()
    (run / "events.jsonl").mkdir()
    return ["resume", "run"]


# a snapshot that cannot be trusted ---------------------------------------------------------


@case("ledger-node-unknown-key", "ledger.json", "bogus", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    edit_ledger(run, lambda d: d["nodes"]["gather"].update(bogus=1))
    return ["status", "run"]


@case("ledger-spend-row-missing-fields", "ledger.json", "spend", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    edit_ledger(run, lambda d: d["nodes"]["write"].update(spend={"executor:x": {"kind": "x"}}))
    return ["cost", "run"]


@case("ledger-source-target-not-a-string", "ledger.json", "source.target", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    edit_ledger(run, lambda d: d["source"].update(target=5))
    return ["resume", "run"]


@case("ledger-deeply-nested", "ledger.json", "nested too deeply", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    raw = (run / "ledger.json").read_bytes()
    deep = b'{"deep": ' + b"[" * 100_000 + b"]" * 100_000 + b", "
    (run / "ledger.json").write_bytes(deep + raw.lstrip()[1:])
    return ["status", "run"]


@case("ledger-output-file-outside", "ledger.json", "output_file", "outputs", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    (tmp / "secret.json").write_text('"not yours"')
    edit_ledger(run, lambda d: d["nodes"]["gather"].update(output_file="../secret.json"))
    return ["resume", "run"]


@case("ledger-output-file-absolute", "ledger.json", "output_file", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    edit_ledger(run, lambda d: d["nodes"]["gather"].update(output_file="/etc/hostname"))
    return ["status", "run"]


@case("output-file-deleted", "'report'", "missing", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    write(tmp, "big.py", BIG)
    assert load_graph(str(tmp / "big.py")).run_sync(run_dir=tmp / "run").ok
    (out,) = (tmp / "run" / "outputs").iterdir()
    out.unlink()
    return ["resume", "run"]


@case("outputs-dir-deleted", "'report'", "missing", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    write(tmp, "big.py", BIG)
    assert load_graph(str(tmp / "big.py")).run_sync(run_dir=tmp / "run").ok
    for out in (tmp / "run" / "outputs").iterdir():
        out.unlink()
    (tmp / "run" / "outputs").rmdir()
    return ["run", "big.py", "--run-dir", "run"]


@case("ledger-is-a-directory", "ledger.json", "directory")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    (run / "ledger.json").unlink()
    (run / "ledger.json").mkdir()
    return ["status", "run"]


@case("ledger-is-a-fifo", "ledger.json", "not a regular file")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    (run / "ledger.json").unlink()
    os.mkfifo(run / "ledger.json")
    return ["status", "run"]


@case("lock-is-a-directory", "ledger.lock", "directory")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    (run / "ledger.lock").unlink(missing_ok=True)
    (run / "ledger.lock").mkdir()
    return ["resume", "run"]


@case("resume-killed-during-creation", "killed while it was being created", hint="flowgraph run")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    (tmp / "run").mkdir()
    (tmp / "run" / "ledger.lock").write_bytes(b"")
    (tmp / "run" / "events.jsonl").write_bytes(b"")
    return ["resume", "run"]


# the inbox ---------------------------------------------------------------------------------


def pending_write(tmp: Path) -> Path:
    """A run whose ``write`` node is still to do (so it can be steered)."""
    run = make_run(tmp)
    edit_ledger(run, lambda d: d["nodes"]["write"].update(status="pending"))
    return run


@case("inbox-offset-past-its-end", "inbox.jsonl", "10000000000", hint="restore")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = make_run(tmp)
    edit_ledger(run, lambda d: d.update(inbox_offset=10**10))
    return ["resume", "run"]


@case("inbox-not-utf8", "inbox.jsonl", "line 2", hint="remove that line")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = pending_write(tmp)
    good = b'{"kind": "steer", "node": "write", "text": "shorter"}\n'
    (run / "inbox.jsonl").write_bytes(good + b'{"kind": "steer", "node": "\xff"}\n')
    return ["resume", "run"]


@case("inbox-nul-bytes-then-steer", "inbox.jsonl", "line 1", hint="remove that line")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = pending_write(tmp)
    (run / "inbox.jsonl").write_bytes(b"\x00\x00\x00\n")
    return ["steer", "run", "write", "be brief"]


@case("inbox-unknown-node", "inbox.jsonl", "'../../evil'", hint="remove that line")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = pending_write(tmp)
    (run / "inbox.jsonl").write_text('{"kind": "steer", "node": "../../evil", "text": "x"}\n')
    return ["resume", "run"]


@case("inbox-wrong-kind", "inbox.jsonl", "kind", hint="remove that line")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = pending_write(tmp)
    (run / "inbox.jsonl").write_text('{"kind": "delete", "node": "write", "text": "x"}\n')
    return ["resume", "run"]


@case("inbox-is-a-directory", "inbox.jsonl", "directory")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    run = pending_write(tmp)
    (run / "inbox.jsonl").mkdir()
    return ["resume", "run"]


@case("approve-unknown-node", "'../../evil'", hint="its nodes are")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    make_run(tmp)
    return ["approve", "run", "../../evil"]


@case("steer-unknown-node", "'nosuch'", hint="its nodes are")
def _(tmp: Path, _s: ExitStack) -> list[str]:
    pending_write(tmp)
    return ["steer", "run", "nosuch", "do better"]


@case("run-dir-read-only", "read-only", hint="chmod")
def _(tmp: Path, stack: ExitStack) -> list[str]:
    run = pending_write(tmp)
    if os.geteuid() == 0:  # root writes through mode bits; an immutable directory stops it
        if subprocess.run(["chattr", "+i", str(run)], capture_output=True).returncode != 0:
            pytest.skip("running as root on a filesystem without chattr +i")
        stack.callback(subprocess.run, ["chattr", "-i", str(run)], check=True)
    else:
        run.chmod(0o555)
        stack.callback(run.chmod, 0o755)
    return ["resume", "run"]


# -- the test ---------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env.update(PYTHONDONTWRITEBYTECODE="1", NO_COLOR="1", COLUMNS="200", TERM="dumb")
    return env


def test_catalogue_is_large_enough() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)


# A few cases also run through the real console script in a subprocess, exactly as a user
# types them: the entry point, the interpreter's start-up and the process's exit code.
SMOKE = ("cycle-run", "ledger-truncated", "input-bad-json", "resume-while-locked",
         "cli-unknown-option")  # fmt: skip


def check(bad: Case, args: list[str], proc: CliResult | subprocess.CompletedProcess[str],
          before: dict[str, bytes | None], after: dict[str, bytes | None]) -> None:  # fmt: skip
    shown = f"flowgraph {' '.join(args)}\n--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}"
    assert "Traceback" not in proc.stdout + proc.stderr, shown
    assert proc.returncode == 2, shown
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, shown
    message = lines[0]
    assert message.startswith("error: "), shown
    for name in bad.names:
        assert name in message, f"the message does not name {name!r}\n{shown}"
    if bad.hint is not None:
        assert bad.hint in message, f"the message lacks the fix hint {bad.hint!r}\n{shown}"
    else:
        assert FIX_RE.search(message), f"no how-to-fix in the message\n{shown}"
    changed = sorted(k for k in before.keys() & after.keys() if before[k] != after[k])
    assert not changed, f"files changed: {changed}\n{shown}"
    assert before.keys() == after.keys(), (
        f"added: {sorted(after.keys() - before.keys())}, "
        f"removed: {sorted(before.keys() - after.keys())}\n{shown}"
    )


@pytest.mark.parametrize("bad", CASES, ids=[c.id for c in CASES])
def test_bad_input(bad: Case, tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    with ExitStack() as stack:
        args = bad.setup(tmp_path, stack)
        before = snapshot(tmp_path)
        proc = cli(*args, cwd=tmp_path)
        after = snapshot(tmp_path)
    check(bad, args, proc, before, after)


def test_smoke_cases_are_in_the_catalogue() -> None:
    assert set(SMOKE) <= {c.id for c in CASES}


@pytest.mark.slow
@pytest.mark.parametrize("bad", [c for c in CASES if c.id in SMOKE], ids=lambda c: c.id)
def test_bad_input_through_the_console_script(
    bad: Case, tmp_path: Path, flowgraph_exe: list[str]
) -> None:
    with ExitStack() as stack:
        args = bad.setup(tmp_path, stack)
        before = snapshot(tmp_path)
        proc = subprocess.run(
            [*flowgraph_exe, *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
            env=_env(),
        )
        after = snapshot(tmp_path)
    check(bad, args, proc, before, after)
