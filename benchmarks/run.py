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

This module plans what is measured; `harness` measures it (cells, rounds, server
subprocesses), `client` is the HTTP client, `report` the ratios and tables.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnxruntime as ort

import inference  # the package's module (the `benchmarks` package put it on the path)
import processing
from benchmarks.batching import BatchingModel
from benchmarks.client import Client
from benchmarks.harness import CONTRIB_DIR, REPO_DIR, Cell, Server, Work, run_rounds
from benchmarks.report import machine, print_report, ratios
from modelhubapi import ModelHubAPI
from modelhubapi.settings import Settings
from squeezenet.modelfiles import VARIANTS, model_path

SAMPLE_DIR = os.path.join(CONTRIB_DIR, "sample_data")
ARTIFACT = os.path.join(REPO_DIR, "artifacts", "bench.json")


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
            "server_threads_default": Settings.from_environment().server_threads,
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
