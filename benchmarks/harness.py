"""The benchmark's harness: cells measured in interleaved rounds, and server subprocesses.

The machine is shared and noisy, so every measurement is a short slice, and the slices are
interleaved in rounds (in a different order each round) so that drift hits all of them
alike; throughput is the median over rounds, latencies are pooled over rounds.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmarks.client import Client

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRAMEWORK_DIR = os.path.join(REPO_DIR, "framework")
CONTRIB_DIR = os.path.join(REPO_DIR, "contrib_src")
SERVER_START_TIMEOUT = 60.0

# A unit of work: given a request counter, do one request; return (images done, succeeded).
Work = Callable[[int], tuple[int, bool]]


# --- measuring --------------------------------------------------------------------------------


@dataclass
class Cell:
    """One thing measured: `workers` threads each running its own `Work` in a loop."""

    group: str  # ceiling, in-process, server, preprocess
    variant: str
    setting: str
    works: list[Work]
    lever: str = ""  # the tuning experiment this cell belongs to ("" = the main table)
    rates: list[float] = field(default_factory=list)  # images/s of each round
    round_p50s: list[float] = field(default_factory=list)  # median latency of each round, s
    latencies: list[float] = field(default_factory=list)  # seconds, every request
    errors: int = 0
    requests: int = 0

    def measure(self, seconds: float) -> None:
        """One slice: all workers loop until `seconds` have passed; the slice's rate counts
        every image finished, over the time until the last worker stopped."""
        results: list[tuple[int, list[float], int]] = [(0, [], 0)] * len(self.works)
        started = time.perf_counter()
        deadline = started + seconds

        def loop(index: int) -> None:
            work, images, latencies, errors, count = self.works[index], 0, [], 0, index * 5
            while time.perf_counter() < deadline:
                begun = time.perf_counter()
                done, ok = work(count)
                latencies.append(time.perf_counter() - begun)
                images += done if ok else 0
                errors += not ok
                count += 1
            results[index] = (images, latencies, errors)

        if len(self.works) == 1:
            loop(0)
        else:
            threads = [threading.Thread(target=loop, args=(i,)) for i in range(len(self.works))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        elapsed = time.perf_counter() - started
        self.rates.append(sum(images for images, _, _ in results) / elapsed)
        self.round_p50s.append(float(np.median([t for _, lat, _ in results for t in lat])))
        for _, latencies, errors in results:
            self.latencies += latencies
            self.errors += errors
            self.requests += len(latencies)

    def summary(self) -> dict[str, Any]:
        latencies = np.asarray(self.latencies) * 1000.0
        return {
            "group": self.group,
            "variant": self.variant,
            "setting": self.setting,
            "lever": self.lever,
            "images_per_s": round(float(np.median(self.rates)), 2) if self.rates else None,
            "p50_ms": round(float(np.percentile(latencies, 50)), 2) if latencies.size else None,
            "p95_ms": round(float(np.percentile(latencies, 95)), 2) if latencies.size else None,
            "errors": self.errors,
            "requests": self.requests,
            "rounds": [round(rate, 2) for rate in self.rates],
            "rounds_p50_ms": [round(p50 * 1000.0, 3) for p50 in self.round_p50s],
        }


def run_rounds(cells: Sequence[Cell], rounds: int, seconds: float, seed: int = 0) -> None:
    """Every cell once per round, in a fresh random order each round (after one warm-up)."""
    rng = np.random.default_rng(seed)
    for cell in cells:  # warm-up: first runs pay for lazy set-up (allocations, connections)
        for index, work in enumerate(cell.works):
            work(index)
    for number in range(rounds):
        order = rng.permutation(len(cells))
        print(f"round {number + 1}/{rounds} ...", file=sys.stderr, flush=True)
        for index in order:
            cells[index].measure(seconds)


# --- servers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    """A server subprocess on a loopback port: its cold start, memory and log."""

    name: str
    variant: str
    command: list[str]
    env: dict[str, str]
    port: int = 0
    process: subprocess.Popen | None = None
    cold_start_s: float | None = None
    log: Any = None

    def start(self, probe: str) -> None:
        """Start it and wait for its first successful prediction (the cold start)."""
        self.port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([FRAMEWORK_DIR, CONTRIB_DIR, REPO_DIR]),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "MODELHUB_VARIANT": self.variant,
            **self.env,
        }
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop())
        started = time.perf_counter()
        self.process = subprocess.Popen(
            self.command, cwd=REPO_DIR, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        client = Client(self.port, [probe])
        while time.perf_counter() - started < SERVER_START_TIMEOUT:
            if self.process.poll() is not None:
                raise RuntimeError(f"server {self.name} exited early:\n{self.log_tail()}")
            if client(0)[1]:
                self.cold_start_s = time.perf_counter() - started
                client.close()
                return
            time.sleep(0.01)  # polling interval while the port is not open yet
        raise RuntimeError(f"server {self.name} gave no prediction in {SERVER_START_TIMEOUT} s")

    def memory_mb(self) -> dict[str, float]:
        """VmRSS (now) and VmHWM (peak) of the server process, in MB."""
        values = {}
        with open(f"/proc/{self.process.pid}/status", encoding="ascii") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = round(int(value.split()[0]) / 1024, 1)
        return values

    def log_tail(self, lines: int = 20) -> str:
        self.log.seek(0)
        return b"\n".join(self.log.read().splitlines()[-lines:]).decode(errors="replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log is not None:
            self.log.close()
