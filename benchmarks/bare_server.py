"""The HTTP server alone: one keep-alive client POSTs a sample photo to a WSGI app that only
reads the body and answers 12 bytes; the median round trip, this tree's engine against
another commit's, in alternating runs (`python -m benchmarks.bare_server --against 8642211`).

What the server itself costs per request (parsing, the hand-over to a request thread and
back, writing the answer), which the full service's latency hides in the model's noise. Each
run is a fresh process importing only the engine's `webservice.BackgroundServer` (the same
signature in every engine since 8642211) and the benchmark's client.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

from benchmarks.client import Client

WARM_UP = 200


def _app(environ, start_response):
    environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "12")])
    return [b'{"output":1}']


def measure(engine: str, photo: str, requests: int) -> float:
    """The median round trip in ms, served by the engine in the folder `engine`."""
    # Ahead of the one this package puts on sys.path (benchmarks/__init__.py).
    sys.path.insert(0, engine)
    from modelhubapi.webservice import BackgroundServer

    with BackgroundServer(_app, threads=8) as server:
        client = Client(int(server.url.rsplit(":", 1)[1]), [photo])
        times = []
        for number in range(WARM_UP + requests):
            started = time.perf_counter()
            client(number)
            times.append(time.perf_counter() - started)
        client.close()
    return statistics.median(times[WARM_UP:]) * 1000


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", default="8642211", help="commit to compare with")
    parser.add_argument("--runs", type=int, default=3, help="runs of each engine, alternating")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--measure", nargs=2, metavar=("ENGINE", "PHOTO"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(measure(*args.measure, args.requests))
        return 0
    from benchmarks.compare import engine_of
    from benchmarks.harness import FRAMEWORK_DIR, REPO_DIR
    from benchmarks.run import sample_paths

    photo = sample_paths()[0]
    results: dict[str, list[float]] = {"new": [], "old": []}
    with tempfile.TemporaryDirectory() as folder:
        engines = {"new": FRAMEWORK_DIR, "old": engine_of(args.against, folder)}
        for _ in range(args.runs):
            for name, engine in engines.items():
                child = [sys.executable, "-m", "benchmarks.bare_server", "--measure", engine]
                done = subprocess.run(
                    [*child, photo, "--requests", str(args.requests)],
                    cwd=REPO_DIR,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                results[name].append(float(done.stdout))
    for name, times in results.items():
        print(f"{name}: median round trip " + " / ".join(f"{ms:.3f}" for ms in times) + " ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
