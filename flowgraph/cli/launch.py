"""Finding the graph a command names: ``FILE[:GRAPH]`` on the command line, or the ``source``
a ledger recorded, so ``flowgraph resume DIR`` can rebuild the graph that started the run."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from flowgraph.errors import ConfigError, FlowgraphError
from flowgraph.graph import Graph
from flowgraph.pipeline import load_pipeline

__all__ = ["load_graph"]

# Targets that earlier versions recorded in ledgers, and where they live now: a run started by
# an older flowgraph stays resumable.
MOVED_TARGETS = {"flowgraph._launch:offline_demo": "flowgraph.demo:offline_demo"}


def load_graph(target: str, kwargs: dict[str, Any] | None = None) -> Graph:
    """Load ``path/to/file.py[:name]`` or ``package.module:name``.

    ``name`` may be a ``Graph`` or a function returning one (called with ``kwargs``). Without a
    name, the file must hold exactly one ``Graph``. The graph's ``source`` is set so that a run's
    ledger can say where to find it again.
    """
    target = MOVED_TARGETS.get(target, target)
    location, _, name = target.partition(":")
    if location.endswith((".yaml", ".yml")):
        graph = load_pipeline(Path(location))
        graph.source = {"target": str(Path(location).resolve()), "kwargs": {}}
        return graph
    if location.endswith(".py") or "/" in location or Path(location).is_file():
        namespace = _exec_file(Path(location))
    else:
        try:
            namespace = vars(importlib.import_module(location))
        except ImportError as exc:
            raise ConfigError(f"cannot import {location!r} ({exc}); pass FILE.py[:GRAPH]") from None
    graph = _pick(namespace, name, location, kwargs or {})
    graph.source = {"target": _portable(location, name or _name_of(namespace, graph)),
                    "kwargs": kwargs or {}}  # fmt: skip
    return graph


def _exec_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(
            f"no such file: {path}; pass the path of a Python file that builds a Graph"
        )
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    module_name = f"flowgraph_user_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(
            f"{path} is not a Python file flowgraph can load; pass a .py file that builds a Graph"
        )
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    # As `python FILE` would: the file's directory is importable, so it can import its neighbours.
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise ConfigError(
            f"{path} line {exc.lineno}: syntax error: {exc.msg}; fix the syntax and run again"
        ) from None
    except FlowgraphError:
        raise
    except Exception as exc:
        raise _user_code_error(
            exc, f"{path} failed to load", f"fix the error in that file (run `python {path}`)"
        ) from None
    return vars(module)


def _user_code_error(exc: Exception, what: str, fix: str) -> ConfigError:
    """One line for an exception raised by the user's code (its first line only)."""
    first = str(exc).splitlines()[0] if str(exc) else ""
    return ConfigError(f"{what}: {type(exc).__name__}: {first}; {fix}")


def _pick(namespace: dict[str, Any], name: str, location: str, kwargs: dict[str, Any]) -> Graph:
    graphs = {k: v for k, v in namespace.items() if isinstance(v, Graph)}
    if not name:
        if len(graphs) == 1:
            return next(iter(graphs.values()))
        if not graphs:
            raise ConfigError(
                f"{location} defines no Graph; build one at module level (graph = Graph(...)) "
                f"or pass {location}:FUNCTION naming a function that returns one"
            )
        raise ConfigError(
            f"{location} holds {len(graphs)} graphs ({', '.join(graphs)}); name one as "
            f"{location}:GRAPH"
        )
    value = namespace.get(name)
    if isinstance(value, Graph):
        return value
    if callable(value):
        made = _call_factory(value, f"{location}:{name}", kwargs)
        if isinstance(made, Graph):
            return made
    found = ", ".join(graphs) or "none"
    raise ConfigError(f"{location} has no graph named {name!r}; graphs in it: {found}")


def _call_factory(factory: Any, where: str, kwargs: dict[str, Any]) -> Any:
    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError as exc:
        raise ConfigError(
            f"{where} is a function that needs arguments ({exc}); give its parameters "
            "defaults, or name a Graph"
        ) from None
    except ValueError:
        pass  # no signature to check (a builtin): just call it
    try:
        return factory(**kwargs)
    except FlowgraphError:
        raise
    except Exception as exc:
        raise _user_code_error(
            exc, f"{where} failed while building the graph", "fix it and run again"
        ) from None


def _name_of(namespace: dict[str, Any], graph: Graph) -> str:
    return next(k for k, v in namespace.items() if v is graph)


def _portable(location: str, name: str) -> str:
    path = Path(location)
    if path.suffix == ".py":
        location = str(path.resolve())
    return f"{location}:{name}"
