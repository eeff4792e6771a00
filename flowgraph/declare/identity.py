"""Code identity: a function's name plus a hash of its source, so that editing a step, a tool or
a check changes the fingerprint of every node that uses it (and a resume re-runs them)."""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["function_identity"]

_IDENTITIES: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def function_identity(func: Callable[..., Any]) -> str:
    """``name:hash-of-source`` of ``func``, cached: reading source is slow and graphs reuse
    functions.

    The module name is left out: a graph file loaded by the CLI gets a different module name
    than the same file imported, and that must not look like an edit. Without source (a
    builtin, a lambda typed at a prompt) the bytecode stands in for it.
    """
    try:
        return _IDENTITIES[func]
    except (KeyError, TypeError):
        pass
    name = getattr(func, "__qualname__", None) or type(func).__name__
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError):
        code = getattr(func, "__code__", None)
        source = code.co_code.hex() if code is not None else ""
    identity = name + ":" + hashlib.sha256(source.encode()).hexdigest()[:16]
    with contextlib.suppress(TypeError):
        _IDENTITIES[func] = identity
    return identity
