"""Side by side: this tree's server against another commit's and against a minimal FastAPI
server of the same pipeline, interleaved (`python -m benchmarks.compare --against 8642211`).

Two run `python -m modelhubapi serve` on the same contributor package (this tree's, with
its built model), one with this tree's engine and one with the engine of `--against`,
extracted with `git archive` into a temporary folder; the third is
`benchmarks.fastapi_server` (needs fastapi, uvicorn and python-multipart, from
requirements-dev.txt). Keep-alive clients POST the sample photos (1 and
4 clients); each cell is measured once per round, in a fresh random order each round, and
the ratios new/old are of the medians over rounds. The machine may be shared: compare
ratios, never absolute numbers from different runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence

from benchmarks.client import Client
from benchmarks.harness import CONTRIB_DIR, REPO_DIR, Cell, Server, run_rounds
from benchmarks.report import paired_ratio
from benchmarks.run import sample_paths, serve_command


def engine_of(commit: str, folder: str) -> str:
    """The `framework/` folder of `commit`, extracted into `folder`; its path."""
    archive = subprocess.run(
        ["git", "archive", commit, "framework"], cwd=REPO_DIR, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    return os.path.join(folder, "framework")


def cells_for(server: Server, clients: Sequence[int]) -> list[Cell]:
    paths = sample_paths()
    return [
        Cell(
            "server",
            server.name,
            f"{count} clients",
            [Client(server.port, paths) for _ in range(count)],
        )
        for count in clients
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", default="8642211", help="commit to compare with")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per slice")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for this tree's server only (a setting to try)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder, contextlib.ExitStack() as stack:
        old_engine = engine_of(args.against, folder)
        servers = [
            Server("new", "fp32", serve_command(), dict(item.split("=", 1) for item in args.env)),
            Server(
                "old",
                "fp32",
                serve_command(),
                {"PYTHONPATH": os.pathsep.join([old_engine, CONTRIB_DIR, REPO_DIR])},
            ),
            Server("fastapi", "fp32", [sys.executable, "-m", "benchmarks.fastapi_server"], {}),
        ]
        probe = sample_paths()[0]
        for server in servers:
            stack.callback(server.stop)
            server.start(probe)
        cells = [cell for server in servers for cell in cells_for(server, (1, 4))]
        run_rounds(cells, args.rounds, args.seconds)
        results = {f"{cell.variant} {cell.setting}": cell.summary() for cell in cells}
    report = {"against": args.against, "results": results, "ratios": _ratios(results)}
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


def _ratios(results: dict) -> dict:
    """new/old and new/fastapi: 4-client throughput and 1-client p50 (each the median of the
    per-round ratios)."""
    return {
        f"new/{other} {measure}": paired_ratio(
            results[f"new {setting}"][key], results[f"{other} {setting}"][key]
        )
        for other in ("old", "fastapi")
        for measure, setting, key in (
            ("throughput 4 clients", "4 clients", "rounds"),
            ("p50 1 client", "1 clients", "rounds_p50_ms"),
        )
    }


if __name__ == "__main__":
    sys.exit(main())
