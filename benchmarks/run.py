"""The benchmark (`make bench`): how much of the model's speed survives the pipeline and HTTP.

In one run, on the bundled sample photos, for each model variant (fp32, int8, compact):

1. ceiling: ONNX Runtime alone (the package's own session) on already-preprocessed tensors,
   batch 1 and batch 8;
2. in-process: ModelHub's Python API, `ModelHubAPI(Model(), contrib_src).predict(path)`
   (decode, preprocess, infer, postprocess), from 1 thread and from N threads;
3. server: `python -m modelhubapi serve` started as a subprocess on a free loopback port, with
   keep-alive clients POSTing the samples to /api/predict, 1 client and 4 clients;

each as images/s, p50 and p95 latency and errors; plus each server's cold start (process start
to first successful prediction) and resident memory (VmRSS) after the run. `--levers` adds
the tuning experiments (ONNX Runtime threads and graph optimisation, server threads, dynamic
batching, JPEG draft decoding) to the same run.

The machine is shared and noisy, so every measurement is a short slice, and the slices are
interleaved in rounds (in a different order each round) so that drift hits all of them alike;
throughput is the median over rounds, latencies are pooled over rounds. Compare the ratios this
prints; never compare absolute numbers from different runs. Results go to artifacts/bench.json.
Servers are stopped at the end whatever happens (also on Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRAMEWORK_DIR = os.path.join(REPO_DIR, "framework")
CONTRIB_DIR = os.path.join(REPO_DIR, "contrib_src")
SAMPLE_DIR = os.path.join(CONTRIB_DIR, "sample_data")
for _path in (CONTRIB_DIR, FRAMEWORK_DIR):  # as `make` sets PYTHONPATH, for a bare `python -m`
    if _path not in sys.path:
        sys.path.insert(0, _path)

import onnxruntime as ort  # noqa: E402

import inference  # noqa: E402  (the package's module, found through the path set above)
import processing  # noqa: E402
from benchmarks.batching import BatchingModel  # noqa: E402
from modelhubapi import ModelHubAPI, settings  # noqa: E402
from squeezenet.modelfiles import DEFAULT_VARIANT, model_path  # noqa: E402

VARIANTS = ("fp32", "int8", "compact")
ARTIFACT = os.path.join(REPO_DIR, "artifacts", "bench.json")
SERVER_START_TIMEOUT = 60.0
REQUEST_TIMEOUT = 30.0

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


# --- the work being measured -------------------------------------------------------------------


def sample_paths() -> list[str]:
    return sorted(
        os.path.join(SAMPLE_DIR, name)
        for name in os.listdir(SAMPLE_DIR)
        if not name.startswith(".")
    )


def ceiling_work(session: ort.InferenceSession, tensors: np.ndarray, batch: int) -> Work:
    """session.run on batches of `batch` preprocessed tensors, cycling through the samples."""
    name = session.get_inputs()[0].name
    batches = [
        np.ascontiguousarray(np.take(tensors, range(start, start + batch), axis=0, mode="wrap"))
        for start in range(0, len(tensors), batch)
    ]

    def work(count: int) -> tuple[int, bool]:
        session.run(None, {name: batches[count % len(batches)]})
        return batch, True

    return work


def api_work(api: ModelHubAPI, paths: Sequence[str]) -> Work:
    def work(count: int) -> tuple[int, bool]:
        return 1, "error" not in api.predict(paths[count % len(paths)])

    return work


class Client:
    """One keep-alive HTTP/1.1 connection POSTing samples to /api/predict (reconnects on error).

    A raw socket rather than http.client, whose header parsing (email.parser) costs about
    0.17 ms per response: that is the client's work, and it would be counted as the server's
    latency. Each request gets a fresh multipart boundary, as browsers and `requests` do: the
    server's form parser then sees what it sees in use.
    """

    def __init__(self, port: int, paths: Sequence[str]):
        self._port = port
        self._files = []
        for path in paths:
            with open(path, "rb") as handle:
                self._files.append((os.path.basename(path), handle.read()))
        self._socket: socket.socket | None = None

    def __call__(self, count: int) -> tuple[int, bool]:
        try:
            if self._socket is None:
                self._socket = socket.create_connection(
                    ("127.0.0.1", self._port), timeout=REQUEST_TIMEOUT
                )
                self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._socket.sendall(self._request(*self._files[count % len(self._files)]))
            status, body = self._response()
        except (OSError, ValueError):
            self.close()
            return 1, False
        return 1, status == 200 and b'"output"' in body

    def _request(self, name: str, data: bytes) -> bytes:
        boundary = uuid.uuid4().hex
        body = b"".join(
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"'
                "\r\nContent-Type: application/octet-stream\r\n\r\n".encode(),
                data,
                f"\r\n--{boundary}--\r\n".encode(),
            )
        )
        head = (
            "POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    def _response(self) -> tuple[int, bytes]:
        """The status and body of one response (ValueError if it is not what the server
        sends: a status line, headers with Content-Length, the body)."""
        received = b""
        while (end := received.find(b"\r\n\r\n")) < 0:
            received += self._receive()
        head, body = received[:end].decode("latin-1"), received[end + 4 :]
        status_line, *lines = head.split("\r\n")
        headers = {}
        for line in lines:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip().lower()
        if "content-length" not in headers:
            raise ValueError("no Content-Length")
        while len(body) < int(headers["content-length"]):
            body += self._receive()
        if headers.get("connection") == "close":
            self.close()
        return int(status_line.split()[1]), body

    def _receive(self) -> bytes:
        data = self._socket.recv(65536)
        if not data:
            raise ValueError("connection closed")
        return data

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


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


def serve_command(*lever_options: str) -> list[str]:
    """`python -m modelhubapi serve`, or with lever options the experimental benchmarks.serve."""
    if lever_options:
        return [sys.executable, "-m", "benchmarks.serve", *lever_options]
    return [sys.executable, "-m", "modelhubapi", "serve", "--contrib", CONTRIB_DIR]


# --- building the cells ------------------------------------------------------------------------


@dataclass
class Plan:
    """The cells to measure and the servers behind some of them (stopped by `stack`)."""

    args: argparse.Namespace
    stack: contextlib.ExitStack
    paths: list[str]
    cells: list[Cell] = field(default_factory=list)
    servers: list[Server] = field(default_factory=list)

    def server(self, name: str, variant: str, command: list[str], **env: str) -> Server:
        instance = Server(name, variant, command, env)
        self.stack.callback(instance.stop)
        print(f"starting server {name} ...", file=sys.stderr, flush=True)
        instance.start(self.paths[0])
        self.servers.append(instance)
        return instance

    def http_cells(self, instance: Server, lever: str = "", label: str = "") -> None:
        for count in (1, self.args.clients):
            works = [Client(instance.port, self.paths) for _ in range(count)]
            for client in works:
                self.stack.callback(client.close)
            setting = f"{count} client{'s' if count > 1 else ''}{label}"
            self.cells.append(Cell("server", instance.variant, setting, works, lever))

    def api_cells(
        self, variant: str, model: Any, threads: Sequence[int], lever: str = "", label: str = ""
    ) -> None:
        api = ModelHubAPI(model, CONTRIB_DIR)
        for count in threads:
            works = [api_work(api, self.paths) for _ in range(count)]
            setting = f"{count} thread{'s' if count > 1 else ''}{label}"
            self.cells.append(Cell("in-process", variant, setting, works, lever))

    def ceiling_cells(
        self,
        variant: str,
        session: ort.InferenceSession,
        tensors: np.ndarray,
        batches: Sequence[int],
        lever: str = "",
        label: str = "",
    ) -> None:
        for batch in batches:
            self.cells.append(
                Cell(
                    "ceiling",
                    variant,
                    f"batch {batch}{label}",
                    [ceiling_work(session, tensors, batch)],
                    lever,
                )
            )


def session_with(
    variant: str, threads: int, level: ort.GraphOptimizationLevel, spinning: bool = False
) -> ort.InferenceSession:
    """A session like the package's, with one option changed (the levers)."""
    options = inference.session_options(threads)
    options.graph_optimization_level = level
    if spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
    return ort.InferenceSession(
        model_path(variant), sess_options=options, providers=["CPUExecutionProvider"]
    )


def build_plan(args: argparse.Namespace, stack: contextlib.ExitStack) -> Plan:
    """The main cells (every variant), then the levers' cells if asked for."""
    plan = Plan(args, stack, sample_paths())
    tensors = None
    for variant in args.variants:
        model = inference.Model(variant)
        tensors = np.concatenate([model._imageProcessor.loadAndPreprocess(p) for p in plan.paths])
        plan.ceiling_cells(variant, model.session, tensors, (1, 8))
        plan.api_cells(variant, model, (1, args.threads))
        if not args.no_server:
            plan.http_cells(plan.server(variant, variant, serve_command()))
    if args.levers:
        add_levers(plan, tensors)
    return plan


def fixed_threads_label(threads: int) -> str:
    return f", {threads} ORT thread{'s' if threads > 1 else ''} always"


def add_levers(plan: Plan, tensors: np.ndarray) -> None:
    """The tuning experiments on fp32, each differing in one setting from the main cells."""
    args, level = plan.args, ort.GraphOptimizationLevel
    # ONNX Runtime intra-op threads (the package uses INTRA_OP_THREADS) and optimisation level.
    plan.ceiling_cells(
        "fp32",
        session_with("fp32", 1, level.ORT_ENABLE_ALL),
        tensors,
        (1, 8),
        "ort-threads",
        ", 1 ORT thread",
    )
    for name, value in (("basic", level.ORT_ENABLE_BASIC), ("extended", level.ORT_ENABLE_EXTENDED)):
        plan.ceiling_cells(
            "fp32",
            session_with("fp32", inference.INTRA_OP_THREADS, value),
            tensors,
            (1, 8),
            "graph-optimisation",
            f", {name} optimisation",
        )
    plan.ceiling_cells(
        "fp32",
        session_with("fp32", inference.INTRA_OP_THREADS, level.ORT_ENABLE_ALL, spinning=True),
        tensors,
        (1, 8),
        "ort-spinning",
        ", ORT spinning",
    )
    for threads in (1, inference.INTRA_OP_THREADS):
        fixed = inference.Model("fp32")  # every run on `threads` threads, however busy the cores
        fixed.session = session_with("fp32", threads, level.ORT_ENABLE_ALL)
        fixed.session_when_busy = fixed.session
        label = fixed_threads_label(threads)
        plan.api_cells("fp32", fixed, (1, args.threads), "ort-threads", label)
    plan.api_cells(
        "fp32", BatchingModel(inference.Model("fp32")), (1, args.threads), "batching", ", batching"
    )
    if not args.no_server:
        experiments = (
            ("batching", ", batching", serve_command("--batching"), {}),
            *(
                ("ort-threads", fixed_threads_label(n), serve_command("--ort-threads", str(n)), {})
                for n in (1, inference.INTRA_OP_THREADS)
            ),
            ("ort-spinning", ", ORT spinning", serve_command("--spinning"), {}),
            ("server-threads", ", 2 server threads", serve_command(), {"MODELHUB_THREADS": "2"}),
            ("server-threads", ", 4 server threads", serve_command(), {"MODELHUB_THREADS": "4"}),
        )
        for lever, label, command, env in experiments:
            name = "fp32" + label.replace(",", "").replace(" ", "-")
            instance = plan.server(name, "fp32", command, **env)
            plan.http_cells(instance, lever, label)
    # JPEG draft decoding, on a large photo (the samples are too small for it to apply).
    large = os.path.join(plan.stack.enter_context(tempfile.TemporaryDirectory()), "large.jpg")
    with processing.Image.open(plan.paths[0]) as image:
        image.convert("RGB").resize((4000, 3000)).save(large, quality=90)
    for draft in (True, False):

        def decode(count: int, draft: bool = draft) -> tuple[int, bool]:
            with processing.Image.open(large) as image:
                processing.warp_and_crop(image, draft=draft)
            return 1, True

        plan.cells.append(
            Cell(
                "preprocess",
                "fp32",
                f"4000x3000 JPEG, draft {'on' if draft else 'off'}",
                [decode],
                "jpeg-draft",
            )
        )


# --- reporting ---------------------------------------------------------------------------------


def find(results: list[dict], group: str, variant: str, setting: str) -> dict | None:
    for result in results:
        if (result["group"], result["variant"], result["setting"]) == (group, variant, setting):
            return result
    return None


def paired_ratio(numerators: list[float] | None, denominators: list[float] | None) -> float | None:
    """Median over rounds of the ratio within each round: the two were measured seconds apart,
    so slow drift of the machine cancels out (a ratio of overall medians would not)."""
    if not numerators or not denominators:
        return None
    pairs = [a / b for a, b in zip(numerators, denominators, strict=True) if b]
    return round(float(np.median(pairs)), 3) if pairs else None


def ratios(results: list[dict], args: argparse.Namespace) -> list[dict]:
    """The ratios the goals are stated in, per variant, each the median of per-round ratios.

    The pipeline and server goals are marked on the model served by default (fp32); the
    other variants' rows show what the same fixed costs weigh on a faster model (int8)."""
    rows = []
    clients, threads = f"{args.clients} clients", f"{args.threads} threads"

    def add(name: str, value: float | None, goal: str | None = None) -> None:
        ok = None
        if value is not None and goal:
            op, bound = goal.split()
            ok = value >= float(bound) if op == ">=" else value <= float(bound)
        rows.append({"ratio": name, "value": value, "goal": goal, "ok": ok})

    for variant in args.variants:
        default = variant == DEFAULT_VARIANT

        def rounds(group: str, setting: str, key: str = "rounds", variant: str = variant):
            found = find(results, group, variant, setting)
            return found[key] if found else None

        single, multi = rounds("in-process", "1 thread"), rounds("in-process", threads)
        best = [max(pair) for pair in zip(single, multi, strict=True)] if single and multi else None
        add(
            f"{variant}: in-process 1 thread / ceiling batch 1",
            paired_ratio(single, rounds("ceiling", "batch 1")),
            ">= 0.8" if default else None,
        )
        add(
            f"{variant}: in-process {threads} / ceiling batch 1",
            paired_ratio(multi, rounds("ceiling", "batch 1")),
        )
        if not args.no_server:
            add(
                f"{variant}: server {clients} / best in-process",
                paired_ratio(rounds("server", clients), best),
                ">= 0.9" if default else None,
            )
            add(
                f"{variant}: server 1 client p50 / in-process 1 thread p50",
                paired_ratio(
                    rounds("server", "1 client", "rounds_p50_ms"),
                    rounds("in-process", "1 thread", "rounds_p50_ms"),
                ),
                "<= 1.15" if default else None,
            )
            add(
                f"{variant}: server 1 client / in-process 1 thread",
                paired_ratio(rounds("server", "1 client"), single),
            )
        if variant != "fp32":
            goal = ">= 2.0" if variant == "int8" else None
            for batch in (1, 8):
                add(
                    f"{variant} / fp32: ceiling batch {batch}",
                    paired_ratio(
                        rounds("ceiling", f"batch {batch}"),
                        rounds("ceiling", f"batch {batch}", variant="fp32"),
                    ),
                    goal,
                )
            add(
                f"{variant} / fp32: in-process 1 thread",
                paired_ratio(single, rounds("in-process", "1 thread", variant="fp32")),
            )
    return rows


def print_table(results: list[dict], title: str) -> None:
    print(f"\n{title}")
    print(
        f"{'group':<11}{'variant':<9}{'setting':<40}{'img/s':>8}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'errors':>8}"
    )
    for r in results:
        print(
            f"{r['group']:<11}{r['variant']:<9}{r['setting']:<40}{r['images_per_s']:>8.1f}"
            f"{r['p50_ms']:>9.2f}{r['p95_ms']:>9.2f}{r['errors']:>8}"
        )


def print_report(report: dict) -> None:
    main = [r for r in report["results"] if not r["lever"]]
    print_table(main, "Main measurements (throughput: median of rounds; latency: pooled)")
    print("\nRatios (this run only; median over rounds of the ratio within each round)")
    for row in report["ratios"]:
        value = "n/a" if row["value"] is None else f"{row['value']:.2f}"
        verdict = "" if row["ok"] is None else ("  ok" if row["ok"] else "  MISSED")
        goal = f"  (goal {row['goal']})" if row["goal"] else ""
        print(f"  {row['ratio']:<58}{value:>6}{goal}{verdict}")
    if report["servers"]:
        print("\nServers")
        for item in report["servers"]:
            print(
                f"  {item['name']:<22} cold start {item['cold_start_s']:.2f} s (goal <= 3)"
                f"   VmRSS {item.get('VmRSS', 0):.0f} MB, peak {item.get('VmHWM', 0):.0f} MB"
                f" (goal <= 250)"
            )
    levers = [r for r in report["results"] if r["lever"]]
    if levers:
        print_table(levers, "Levers (same run; compare with the main rows above)")


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="ascii") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "load_average_at_start": os.getloadavg(),
    }


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 short rounds")
    parser.add_argument("--levers", action="store_true", help="add the tuning experiments")
    parser.add_argument("--rounds", type=int, help="rounds (default 5; 2 with --quick)")
    parser.add_argument("--seconds", type=float, help="seconds per slice (default 1.0; 0.25 quick)")
    parser.add_argument("--threads", type=int, default=4, help="in-process threads (default 4)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (default 4)")
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help="comma-separated model variants (default %(default)s)",
    )
    parser.add_argument("--no-server", action="store_true", help="skip the HTTP measurements")
    parser.add_argument("--output", default=ARTIFACT, help="JSON output (default %(default)s)")
    args = parser.parse_args(argv)
    args.variants = [name.strip() for name in args.variants.split(",") if name.strip()]
    args.rounds = args.rounds or (2 if args.quick else 5)
    args.seconds = args.seconds or (0.25 if args.quick else 1.0)
    return args


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through the ExitStack, which stops the servers


def measure(args: argparse.Namespace, report: dict[str, Any]) -> None:
    """Start what is measured, measure it in rounds, stop every server whatever happens."""
    with contextlib.ExitStack() as stack:
        plan = build_plan(args, stack)
        run_rounds(plan.cells, args.rounds, args.seconds)
        report["results"] = [cell.summary() for cell in plan.cells]
        report["servers"] = [
            {
                "name": server.name,
                "variant": server.variant,
                "cold_start_s": round(server.cold_start_s, 3),
                **server.memory_mb(),
            }
            for server in plan.servers
        ]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    # Errors only: the spinning lever overrides the package's session option on purpose.
    ort.set_default_logger_severity(3)
    started = time.perf_counter()
    report: dict[str, Any] = {
        "machine": machine(),
        "settings": {
            "rounds": args.rounds,
            "seconds_per_slice": args.seconds,
            "threads": args.threads,
            "clients": args.clients,
            "variants": args.variants,
            "levers": args.levers,
            "samples": len(sample_paths()),
            "ort_intra_op_threads": inference.INTRA_OP_THREADS,
            "server_threads_default": settings.server_threads(),
        },
    }
    try:
        measure(args, report)
    except (FileNotFoundError, RuntimeError) as error:  # a variant not built, a server down
        print(f"error: {error}", file=sys.stderr)
        return 1
    report["ratios"] = ratios(report["results"], args)
    report["seconds"] = round(time.perf_counter() - started, 1)
    print_report(report)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    print(f"\nwrote {os.path.relpath(args.output)} in {report['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
