"""The measurements the Kubernetes manifests are sized from, on one server held to one core.

`python -m deploy.capacity` (from the repository root, after `make install`) starts
`python -m modelhubapi serve` under `taskset -c CORE`, so that it sees one core as it would
in a pod limited to one CPU (the clients run on the other cores), and measures, with the
benchmark's keep-alive client:

1. its start: process start to first prediction (the startupProbe's budget);
2. its resident memory after 200 uploads from one client (the memory request);
3. saturated (2 clients, closed loop): images/s and the server's CPU time per image, read
   from /proc (every thread of the process, so decoding, pre-processing and the model);
4. open loop: uploads arriving at random (Poisson) at 50 %, 60 % and 70 % of the saturated
   rate, each from the moment it is due, so queueing counts: p50 and p99 latency;
5. its peak resident memory over all of it (VmHWM, the memory limit's floor).

It prints them and the capacity table of the README's deployment section. The machine is
shared and noisy: these are one run's numbers, not a gate.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from benchmarks.client import Client
from benchmarks.harness import Cell, Server
from benchmarks.run import sample_paths, serve_command

CLK_TCK = os.sysconf("SC_CLK_TCK")
LOADS = (0.5, 0.6, 0.7)
TARGET_RATES = (100, 1_000, 10_000)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of every thread of process `pid` so far."""
    with open(f"/proc/{pid}/stat") as file:
        fields = file.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def saturated(server: Server, paths: Sequence[str], seconds: float) -> tuple[float, float]:
    """Two closed-loop clients for `seconds`: (images/s, server CPU seconds per image)."""
    cell = Cell("server", "fp32", "2 clients", [Client(server.port, paths) for _ in range(2)])
    cpu_before = cpu_seconds(server.process.pid)
    cell.measure(seconds)
    cpu = cpu_seconds(server.process.pid) - cpu_before
    assert cell.errors == 0, server.log_tail()  # a failed request spoils the measurement
    return cell.rates[0], cpu / cell.requests


def open_loop(server: Server, paths: Sequence[str], rate: float, seconds: float) -> list[float]:
    """Uploads due at Poisson-random moments, `rate` a second for `seconds`; each latency
    (seconds) runs from the moment it was due to its answer."""
    local = threading.local()
    latencies: list[float] = []

    def send(count: int, due: float) -> None:
        if not hasattr(local, "client"):
            local.client = Client(server.port, paths)
        _, ok = local.client(count)
        assert ok, server.log_tail()
        latencies.append(time.monotonic() - due)

    randomness = random.Random(0)
    sent = []
    with ThreadPoolExecutor(16) as pool:
        due = time.monotonic()
        end = due + seconds
        count = 0
        while due < end:
            time.sleep(max(0.0, due - time.monotonic()))
            sent.append(pool.submit(send, count, due))
            count += 1
            due += randomness.expovariate(rate)
    for future in sent:
        future.result()  # a failed request raises here instead of leaving the latencies
    return latencies


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def capacity_table(per_core: float, p99_ms: dict[float, float]) -> str:
    """Markdown: one-core replicas needed for each target rate at each load level."""
    lines = [
        "| images/s | " + " | ".join(f"replicas at {load:.0%} CPU" for load in LOADS) + " |",
        "| --- |" + " --- |" * len(LOADS),
    ]
    for rate in TARGET_RATES:
        cells = [str(math.ceil(rate / (per_core * load))) for load in LOADS]
        lines.append(f"| {rate:,} | " + " | ".join(cells) + " |")
    lines.append(
        "| p99 at that load | " + " | ".join(f"{p99_ms[load]:.0f} ms" for load in LOADS) + " |"
    )
    return "\n".join(lines)


def measure(core: int, seconds: float) -> None:
    """Run every measurement above on a server held to `core`; the clients use the others."""
    others = os.sched_getaffinity(0) - {core}
    if others:
        os.sched_setaffinity(0, others)
    paths = sample_paths()
    server = Server("one core", "fp32", ["taskset", "-c", str(core), *serve_command()], {})
    try:
        server.start(paths[0])
        print(f"start to first prediction: {server.cold_start_s:.2f} s")
        client = Client(server.port, paths)
        assert all(client(count)[1] for count in range(200)), server.log_tail()
        client.close()
        print(f"resident memory after 200 uploads: {server.memory_mb()['VmRSS']} MB")
        rate, cpu_per_image = saturated(server, paths, seconds)
        print(f"saturated, 2 clients: {rate:.1f} images/s, {cpu_per_image * 1000:.1f} ms CPU/image")
        p99_ms = {}
        for load in LOADS:
            latencies = open_loop(server, paths, rate * load, seconds)
            p99_ms[load] = percentile(latencies, 0.99) * 1000
            print(
                f"open loop at {load:.0%} ({rate * load:.1f}/s, {len(latencies)} uploads): "
                f"p50 {statistics.median(latencies) * 1000:.0f} ms, p99 {p99_ms[load]:.0f} ms"
            )
        print(f"peak resident memory: {server.memory_mb()['VmHWM']} MB")
        print(capacity_table(rate, p99_ms))
    finally:
        server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.capacity", description=__doc__)
    parser.add_argument("--core", type=int, default=1, help="the core to run the server on")
    parser.add_argument("--seconds", type=float, default=20, help="length of each load")
    args = parser.parse_args(argv)
    measure(args.core, args.seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
