"""A local Ray cluster for tests and benchmarks: a head and more nodes on 127.0.0.1, each a
`ray start` of its own with its own CPUs and a custom resource named after it (so where work ran
can be seen), stopped by process id.

``ray stop`` kills every Ray process on the machine by name; this cluster kills only what its
own `ray start` processes left behind: each is started in a new session, and Ray's daemons and
workers stay in the session they were born in (each worker in a process group of its own).

Ray advertises a machine's non-loopback address even when told 127.0.0.1, and probes a public
address to find its own: on a machine whose network must not be used, run the cluster and its
users inside a loopback-only network namespace (as root: ``unshare -n``, then
``ip link set lo up``). This module does not import ray; it runs the `ray` command::

    with LocalRayCluster(port=6391) as cluster:
        cluster.add("head_node", head=True)
        cluster.add("second_node")
        executor = RayExecutor(cluster.address)
        ...
        cluster.kill("second_node")  # SIGKILL: a node lost mid-run
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType

__all__ = ["LocalRayCluster"]


class LocalRayCluster:
    """Ray nodes on 127.0.0.1, started with `ray start` and stopped by process id.

    Args:
        port: the head's port.
        env: extra environment for the nodes (and so for their workers), e.g. ``PYTHONPATH``.
        object_store_bytes: each node's object store (small: tests move little data).
    """

    def __init__(
        self,
        port: int = 6391,
        *,
        env: dict[str, str] | None = None,
        object_store_bytes: int = 100_000_000,
    ) -> None:
        self.port = port
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})}
        self.object_store_bytes = object_store_bytes
        self.sessions: dict[str, int] = {}
        # Ray's unix socket paths must stay under 107 bytes: a short directory of its own.
        self.sockets = Path(tempfile.mkdtemp(prefix="fgray"))
        self._ray = str(Path(sys.executable).parent / "ray")

    @property
    def address(self) -> str:
        """The head's ``host:port``."""
        return f"127.0.0.1:{self.port}"

    def add(self, name: str, *, cpus: int = 1, head: bool = False) -> None:
        """Start a node with ``cpus`` CPUs and the custom resource ``name`` (1000 of it)."""
        common = [f"--num-cpus={cpus}", "--node-ip-address=127.0.0.1", "--disable-usage-stats",
                  f"--object-store-memory={self.object_store_bytes}",
                  f'--resources={{"{name}": 1000}}']  # fmt: skip
        if head:
            where = ["--head", f"--port={self.port}", "--include-dashboard=false",
                     f"--temp-dir={self.sockets}"]  # fmt: skip
        else:
            where = [f"--address={self.address}"]
        # A new session: its id is `ray start`'s pid, and every process it leaves behind (GCS,
        # raylet, the workers the raylet starts) stays in that session.
        started = subprocess.Popen([self._ray, "start", *where, *common], env=self.env,
                                   start_new_session=True, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)  # fmt: skip
        self.sessions[name] = started.pid
        said, _ = started.communicate(timeout=180)
        if started.returncode != 0:
            raise RuntimeError(f"ray start ({name}) failed: {said[-2000:]}")

    def kill(self, name: str) -> None:
        """SIGKILL every process node ``name``'s `ray start` left running."""
        session = self.sessions.pop(name, None)
        if session is None:
            return
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                if os.getsid(int(entry)) == session:
                    os.kill(int(entry), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                continue

    def stop(self) -> None:
        """Kill every node this cluster started, the head last."""
        for name in reversed(list(self.sessions)):
            self.kill(name)
        shutil.rmtree(self.sockets, ignore_errors=True)

    def __enter__(self) -> LocalRayCluster:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
