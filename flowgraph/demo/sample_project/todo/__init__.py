"""todo: a tiny in-memory todo list, the project the flowgraph demo's roles work on."""
