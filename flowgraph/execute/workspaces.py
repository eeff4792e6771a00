"""A workspace per writer node: a role that can change files (Write, Edit or Bash) works in
its own copy of the shared workspace, and its changes come back when it passes.

The copy is a git worktree when the shared workspace is a repository (then brought level
with the shared files, uncommitted changes included), a plain copy otherwise. On merge-back,
every file the node changed must still be as it was when the node started; if another node
changed it meanwhile, the later node fails naming the files, and nothing of its work is
applied (never a silent overwrite). The node's changes are kept as a unified diff.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import shutil
import subprocess
from pathlib import Path

from flowgraph.errors import NodeError

__all__ = ["NodeWorkspace", "manifest"]

SKIPPED = {".git", "__pycache__", ".race", ".mypy_cache", ".ruff_cache", ".pytest_cache"}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest(root: Path) -> dict[str, str]:
    """Every file under ``root`` (without VCS and cache folders) and its content hash."""
    if not root.is_dir():
        return {}
    found: dict[str, str] = {}
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if SKIPPED & set(relative.parts) or path.is_symlink() or not path.is_file():
            continue
        found[relative.as_posix()] = _digest(path)
    return found


class NodeWorkspace:
    """One node's own copy of the shared workspace, and how it started."""

    def __init__(self, shared: Path, work: Path, base: dict[str, str], git: bool) -> None:
        self.shared, self.work, self.base, self.git = shared, work, base, git

    @classmethod
    def open(
        cls, shared: Path, home: Path, node: str, base: dict[str, str] | None = None
    ) -> NodeWorkspace:
        """A fresh copy of ``shared`` for ``node`` under ``home`` (an old one is replaced:
        a retried node starts again from the shared files), or, given the ``base`` it started
        from, the node's copy as it left it (a node resumed after an approval)."""
        shared.mkdir(parents=True, exist_ok=True)
        work = home / re.sub(r"[^A-Za-z0-9_.-]", "_", node)
        git = (shared / ".git").exists()
        if base is not None and work.is_dir():
            return cls(shared, work, dict(base), git)
        cls._remove(shared, work, git)
        work.parent.mkdir(parents=True, exist_ok=True)
        if git:
            _git(shared, "worktree", "add", "--detach", str(work))
        else:
            shutil.copytree(shared, work, symlinks=True, ignore=shutil.ignore_patterns(*SKIPPED))
        base = manifest(shared)
        if git:
            _level(shared, work, base)
        return cls(shared, work, base, git)

    @staticmethod
    def _remove(shared: Path, work: Path, git: bool) -> None:
        if git and work.exists():
            subprocess.run(["git", "-C", str(shared), "worktree", "remove", "--force", str(work)],
                           capture_output=True, check=False)  # fmt: skip
        if work.exists():
            shutil.rmtree(work)
        if git:
            subprocess.run(["git", "-C", str(shared), "worktree", "prune"],
                           capture_output=True, check=False)  # fmt: skip

    def changes(self) -> dict[str, str | None]:
        """Files the node added or changed (their new hash) or deleted (``None``)."""
        now = manifest(self.work)
        changed: dict[str, str | None] = {p: h for p, h in now.items() if self.base.get(p) != h}
        changed.update({p: None for p in self.base if p not in now})
        return changed

    def merge_back(self, node: str) -> tuple[list[str], str]:
        """Apply the node's changes to the shared workspace; return the changed files and
        their diff. A file another node changed since this one started is a conflict."""
        changed = self.changes()
        conflicts = []
        for path, new in changed.items():
            target = self.shared / path
            current = _digest(target) if target.is_file() else None
            if current != self.base.get(path) and current != new:
                conflicts.append(path)
        if conflicts:
            raise NodeError(
                f"node {node!r} changed {', '.join(sorted(conflicts))}, which another node "
                f"changed while it ran; nothing of {node!r} was applied. Its copy is kept in "
                f"{self.work}; run the two nodes one after the other, or give them different files"
            )
        diff = "".join(self._diff(p) for p in sorted(changed))
        for path, new in changed.items():
            target = self.shared / path
            if new is None:
                target.unlink(missing_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(self.work / path, target)
        return sorted(changed), diff

    def _diff(self, path: str) -> str:
        before, after = self.shared / path, self.work / path
        old = _lines(before)
        new = _lines(after)
        return "".join(difflib.unified_diff(old, new, f"a/{path}" if old else "/dev/null",
                                            f"b/{path}" if new else "/dev/null"))  # fmt: skip

    def close(self) -> None:
        """Remove the copy (after its changes came back)."""
        self._remove(self.shared, self.work, self.git)


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        return []
    return path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)


def _git(repo: Path, *args: str) -> None:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise NodeError(f"git {' '.join(args[:2])} failed in {repo}: {done.stderr.strip()}")


def _level(shared: Path, work: Path, files: dict[str, str]) -> None:
    """Make a fresh worktree hold exactly the shared files (uncommitted changes included)."""
    present = manifest(work)
    for path, digest in files.items():
        if present.get(path) != digest:
            (work / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(shared / path, work / path)
    for path in present:
        if path not in files:
            (work / path).unlink()
