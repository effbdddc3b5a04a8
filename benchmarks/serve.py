"""`python -m benchmarks.serve [options]`: the production server with one lever changed.

Only for the benchmark's tuning experiments (`--levers`): the same `webservice.start` as
`python -m modelhubapi serve`, given the package's model with its ONNX Runtime sessions
re-created with other options, or wrapped in dynamic batching.
"""

from __future__ import annotations

import argparse

from benchmarks.batching import BatchingModel
from modelhubapi import cli, webservice


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve")
    parser.add_argument("--batching", action="store_true", help="batch concurrent requests")
    parser.add_argument(
        "--ort-threads",
        type=int,
        help="ONNX Runtime intra-op threads for every run (the package takes 1 when busy)",
    )
    parser.add_argument(
        "--spinning",
        action="store_true",
        help="the 2-thread session's idle threads spin-wait (the package turns spinning off; "
        "runs that start while the cores are busy still take its 1-thread session)",
    )
    args = parser.parse_args()
    contrib_dir = cli.check_contrib_dir(cli.default_contrib_dir())
    model = cli.load_model(contrib_dir)
    if args.ort_threads or args.spinning:
        import inference  # the package's module, importable once load_model ran

        model.session = session(
            inference,
            model.variant,
            args.ort_threads or inference.INTRA_OP_THREADS,
            args.spinning,
        )
        if args.ort_threads:
            model.session_when_busy = model.session
    webservice.start(BatchingModel(model) if args.batching else model, contrib_dir)


def session(inference, variant: str, threads: int, spinning: bool):
    """The package's session for `variant` with `threads` intra-op threads, spinning if asked."""
    import onnxruntime as ort

    from squeezenet.modelfiles import model_path

    options = inference.session_options(threads)
    if spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
    return ort.InferenceSession(
        model_path(variant), sess_options=options, providers=["CPUExecutionProvider"]
    )


if __name__ == "__main__":
    main()
