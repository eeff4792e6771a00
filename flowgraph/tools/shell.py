"""``Bash``: a shell command run in the node's workspace, with a timeout, an output cap, and an
environment without API keys, tokens or other secrets.

Its confinement is a check of the command's words, not a sandbox: a word that climbs with
``..``, names an absolute path outside the workspace (other than the system's programs and
``/dev/null``), or a symlink that resolves outside, refuses the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import signal
from pathlib import Path

from flowgraph.tools.confine import Place, ToolRefused, cut

__all__ = ["Bash", "clean_environment"]

DEFAULT_TIMEOUT_MS = 120_000
MAX_TIMEOUT_MS = 600_000
MAX_OUTPUT_CHARS = 30_000
SECRET = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|COOKIE|SESSION", re.I)
# Paths a command may name outside the workspace: programs and the null device, never data.
SYSTEM_PREFIXES = (
    "/usr/",
    "/bin/",
    "/sbin/",
    "/lib/",
    "/opt/",
    "/dev/null",
    "/dev/std",
    "/dev/zero",
    "/dev/urandom",
)


def clean_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """``environ`` (the process's by default) without anything that looks like a secret."""
    source = dict(os.environ if environ is None else environ)
    return {
        k: v for k, v in source.items() if not SECRET.search(k) and not k.startswith("ANTHROPIC")
    }


async def Bash(command: str, ctx: Place, timeout: int | None = None) -> str:
    """Run a shell command in the workspace and return its output and exit code.

    `timeout` is in milliseconds (default 120000, at most 600000). Output past 30000
    characters is truncated. API keys and tokens are not in its environment.
    """
    root = ctx.workspace.resolve()
    _check_words(command, root)
    limit_ms = min(timeout or DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS)
    root.mkdir(parents=True, exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        "/bin/bash", "-c", command, cwd=root, env={**clean_environment(), "PWD": str(root)},
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    kept = bytearray()
    total = 0

    async def drain() -> None:
        nonlocal total
        while chunk := await proc.stdout.read(65536):  # type: ignore[union-attr]
            total += len(chunk)
            if len(kept) < MAX_OUTPUT_CHARS * 4:
                kept.extend(chunk[: MAX_OUTPUT_CHARS * 4 - len(kept)])
        await proc.wait()

    try:
        async with asyncio.timeout(limit_ms / 1000):
            await drain()
    except TimeoutError:
        _kill(proc.pid)
        await proc.wait()
        text = cut(kept.decode(errors="replace"), MAX_OUTPUT_CHARS)
        raise ToolRefused(f"command timed out after {limit_ms} ms and was killed; output so "
                          f"far:\n{text}") from None  # fmt: skip
    except BaseException:
        _kill(proc.pid)
        raise
    text = kept.decode(errors="replace")
    if total > len(kept) or len(text) > MAX_OUTPUT_CHARS:
        text = text[:MAX_OUTPUT_CHARS] + f"\n... [output truncated: {total} bytes in all]"
    code = proc.returncode
    if code != 0:
        raise ToolRefused(f"exit code {code}\n{text}")
    return f"{text}\n(exit code 0)" if text else "(no output, exit code 0)"


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)  # the whole group: a shell's children too


def _check_words(command: str, root: Path) -> None:
    try:
        words = shlex.split(command, comments=True)
    except ValueError as exc:
        raise ToolRefused(f"cannot parse the command ({exc}); check its quotes") from None
    for word in words:
        for part in re.split(r"[=:;|&<>()`$]", word):
            _check_path(part, root)


def _check_path(part: str, root: Path) -> None:
    if not part:
        return
    if ".." in Path(part).parts:
        raise ToolRefused(f"the command names {part!r}: '..' may leave the workspace; "
                          "use paths inside it")  # fmt: skip
    if part.startswith("/"):
        if part.startswith(SYSTEM_PREFIXES) or Path(part).is_relative_to(root):
            return
        raise ToolRefused(f"the command names {part!r}, outside the workspace; use paths "
                          "relative to the workspace")  # fmt: skip
    if part.startswith("~"):
        raise ToolRefused(f"the command names {part!r}, outside the workspace")
    if not (root / part).resolve().is_relative_to(root):
        raise ToolRefused(f"the command names {part!r}, a symlink that leads outside the "
                          "workspace")  # fmt: skip
