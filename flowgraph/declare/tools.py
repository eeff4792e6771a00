"""Tools: plain Python functions a role's model may call, described by their type hints.

The JSON schema sent to the model comes from the function's signature (pydantic builds it), the
description from its docstring. A parameter annotated ``Context`` is not shown to the model: it is
filled in by flowgraph with the running node's context.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from flowgraph.declare.context import Context
from flowgraph.declare.identity import function_identity
from flowgraph.errors import GraphError
from flowgraph.tools.confine import Place, ToolRefused
from flowgraph.tools.result import ToolResult

__all__ = ["Tool", "ToolResult", "tool"]

ToolFunc = Callable[..., Any]


class Tool:
    """A function the model can call.

    Every annotated parameter becomes a field of the JSON schema the model sees, and the
    docstring's first paragraph its description. A parameter annotated ``Context`` (usually
    ``ctx: Context``) is the exception: the model never sees it, and flowgraph passes the
    running node's context in it: ``ctx.workspace`` (the directory the node may write to),
    ``ctx.input``, ``ctx.outputs`` (upstream outputs), ``ctx.node``, ``ctx.run_dir`` and
    ``ctx.vars``. A tool that raises returns the error to the model as a tool error; the run
    goes on. Plain functions in ``Role(tools=[...])`` are wrapped in a ``Tool`` for you:

    ```python
    async def note(package: str, finding: str, ctx: Context) -> str:
        "Append one finding about a package to audit.md in the node's workspace."
        ctx.workspace.mkdir(parents=True, exist_ok=True)
        with (ctx.workspace / "audit.md").open("a") as fh:
            print(f"- {package}: {finding}", file=fh)
        return "noted"
    ```

    Args:
        func: a sync or async function with annotated parameters.
        name: the name the model sees; the function's name by default.
        description: what the tool does; the docstring's first paragraph by default.
        approval: every call waits for a person's approval (``flowgraph approve``).
    """

    def __init__(
        self,
        func: ToolFunc,
        *,
        name: str | None = None,
        description: str | None = None,
        approval: bool = False,
    ):
        self.func = func
        self.approval = approval
        self.name = name or func.__name__
        doc = inspect.getdoc(func) or ""
        self.description = description or doc.split("\n\n")[0].strip() or self.name
        self._context_param: str | None = None
        self._args_model = self._build_args_model(func)
        self.input_schema: dict[str, Any] = self._args_model.model_json_schema()
        self.input_schema.pop("title", None)

    def _build_args_model(self, func: ToolFunc) -> type[BaseModel]:
        try:
            hints = get_type_hints(func)
        except Exception as exc:  # a forward reference that cannot be resolved
            raise GraphError(f"tool {self.name!r}: cannot read its type hints ({exc})") from exc
        fields: dict[str, Any] = {}
        for param in inspect.signature(func).parameters.values():
            annotation = hints.get(param.name)
            if annotation is Context or annotation is Place:  # built-in tools take a Place
                self._context_param = param.name
                continue
            if annotation is None:
                raise GraphError(
                    f"tool {self.name!r}: parameter {param.name!r} has no type hint; "
                    f"annotate it (e.g. `{param.name}: str`) so the model gets a schema"
                )
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[param.name] = (annotation, default)
        config = ConfigDict(extra="forbid")
        model: type[BaseModel] = create_model(f"{self.name}_args", __config__=config, **fields)
        return model

    def to_param(self) -> dict[str, Any]:
        """The Messages-API tool param for this tool."""
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
        }

    def spec(self) -> dict[str, Any]:
        """What defines the tool, for fingerprints: what the model sees, and the function's
        source (editing the body changes what the tool does)."""
        return {**self.to_param(), "code": function_identity(self.func),
                **({"approval": True} if self.approval else {})}  # fmt: skip

    async def call(self, arguments: dict[str, Any], context: Context) -> ToolResult:
        """Validate the model's arguments, run the function, and turn any failure into an error
        result for the model to read (a tool failing never crashes the run)."""
        try:
            parsed = self._args_model.model_validate(arguments)
        except ValidationError as exc:
            errors = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors()
            )
            return ToolResult(f"invalid arguments for {self.name}: {errors}", is_error=True)
        kwargs = {k: getattr(parsed, k) for k in type(parsed).model_fields}
        if self._context_param:
            kwargs[self._context_param] = context
        try:
            result = self.func(**kwargs)
            if inspect.isawaitable(result):
                result = await result
        except ToolRefused as refused:  # a built-in tool's refusal reads as plain advice
            return ToolResult(str(refused), is_error=True)
        except Exception as exc:
            return ToolResult(f"{type(exc).__name__}: {exc}", is_error=True)
        return ToolResult(_to_text(result))


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return json.dumps(value, default=str)


def tool(
    func: ToolFunc | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    approval: bool = False,
) -> Any:
    """Decorator form of ``Tool``: ``@tool`` or ``@tool(name="...", approval=True)``.

    The function's parameters follow ``Tool``'s rules: each annotated one is shown to the model,
    except a ``ctx: Context`` parameter, which flowgraph fills in with the running node's
    context (its workspace, input and upstream outputs).
    """

    def wrap(f: ToolFunc) -> Tool:
        return Tool(f, name=name, description=description, approval=approval)

    return wrap(func) if func is not None else wrap
