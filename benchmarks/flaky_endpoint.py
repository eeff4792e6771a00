"""A flaky endpoint: half the calls fail with 529 or 500. Does every run still finish, and how slow?

    python benchmarks/flaky_endpoint.py [--runs 10] [--nodes 20] [--rate 0.5]

Each run is a real flowgraph run of ``--nodes`` parallel role nodes (one turn each) through
``AnthropicModel`` and the real SDK against the emulator, with the default router policy and the
real clock. The emulator fails a seeded random ``--rate`` of the model's calls (529 or 500).
Two configurations: no fallbacks (the router retries in place with jittered back-off and waits
out its breaker), and a fallback model that never fails. Prints, per configuration, how many runs
passed and the wall time of each.
"""

from __future__ import annotations

import argparse
import random
import time

from flowgraph import Graph, Role
from flowgraph.models.anthropic import AnthropicModel
from flowgraph.testing.emulator import Emulator

PRIMARY = "claude-sonnet-4-6"
BACKUP = "claude-haiku-4-5"


def one_run(seed: int, nodes: int, rate: float, fallback: bool) -> tuple[bool, float]:
    rng = random.Random(seed)
    with Emulator() as emu:
        for call in range(nodes * 40):  # far more calls than a run makes
            if rng.random() < rate:
                emu.fault(rng.choice(["overloaded", "server_error"]), model=PRIMARY, call=call)
        graph = Graph("flaky", client=AnthropicModel("bench", base_url=emu.base_url))
        role = Role("w", "Answer.", model=PRIMARY, fallbacks=[BACKUP] if fallback else [])
        for i in range(nodes):
            graph.node(f"n{i}", role, "work")
        start = time.perf_counter()
        result = graph.run_sync()
        return result.ok, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--rate", type=float, default=0.5)
    args = parser.parse_args()
    for fallback in (False, True):
        label = "with a fallback" if fallback else "no fallbacks"
        outcomes = [one_run(seed, args.nodes, args.rate, fallback) for seed in range(args.runs)]
        passed = sum(ok for ok, _ in outcomes)
        times = ", ".join(f"{t:.1f}" for _, t in outcomes)
        print(f"{label:16} {passed}/{args.runs} runs passed; wall seconds: {times}", flush=True)


if __name__ == "__main__":
    main()
