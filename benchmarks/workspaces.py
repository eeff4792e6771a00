"""What a writer node's own workspace costs: opening a copy (or git worktree) of a project of
N files, then merging one changed file back and removing the copy. Prints milliseconds.

    python benchmarks/workspaces.py
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from flowgraph.execute.workspaces import NodeWorkspace


def project(root: Path, files: int, git: bool) -> Path:
    shared = root / "shared"
    for i in range(files):
        folder = shared / f"pkg{i % 20}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"mod{i}.py").write_text("x = 1\n" * 50)
    if git:
        git_cmd = ["git", "-C", str(shared), "-c", "user.email=b@b", "-c", "user.name=b"]
        for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "start"]):
            subprocess.run([*git_cmd, *args], check=True)
    return shared


def main() -> None:
    for files in (10, 1000):
        for git in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                shared = project(Path(tmp), files, git)
                started = time.perf_counter()
                own = NodeWorkspace.open(shared, Path(tmp) / "nodes", "backend")
                opened = time.perf_counter()
                (own.work / "pkg0" / "mod0.py").write_text("y = 2\n")
                own.merge_back("backend")
                own.close()
                done = time.perf_counter()
            kind = "git worktree" if git else "copy"
            print(f"{files:5} files, {kind:12}: open {1000 * (opened - started):7.1f} ms, "
                  f"merge back + remove {1000 * (done - opened):7.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
