"""Built-in coding tools, named and parameterised as Claude Code names them (``Read``, ``Grep``,
``Glob``, ``Write``, ``Edit``, ``Bash``), the permission profiles ``READ_ONLY`` and ``CODER``,
and MCP servers as tools. Every path is confined to the node's workspace.

They know nothing of graphs: each takes the running node's ``Context`` (anything with a
``workspace``). May import: the foundation modules.
"""

from flowgraph.tools.confine import Place, ToolRefused
from flowgraph.tools.files import Edit, Read, Write
from flowgraph.tools.profiles import BUILTIN, CODER, READ_ONLY, WRITERS
from flowgraph.tools.search import Glob, Grep
from flowgraph.tools.shell import Bash

__all__ = [
    # the built-in tools
    "Bash",
    "Edit",
    "Glob",
    "Grep",
    "Read",
    "Write",
    # profiles
    "BUILTIN",
    "CODER",
    "READ_ONLY",
    "WRITERS",
    # confinement
    "Place",
    "ToolRefused",
]
