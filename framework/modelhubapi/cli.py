"""Command line: `modelhub {init,predict,evaluate,serve}` (also `python -m modelhubapi ...`).

Each command works on one contributor package (`--contrib DIR`; by default the current folder
when it is one, as in ModelHub's image where the working directory is /contrib_src, else
`./contrib_src`, as from a repository's root). The package folder goes first on sys.path, as
ModelHub runs its packages: their modules import each other by plain name. Bad input gets a
one-line message on stderr and exit status 1 (2 for a malformed command line, as argparse
does), never a traceback. Progress bars go to stderr, results to stdout, so output can be
piped.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from typing import Any

from tqdm import tqdm

from modelhubapi import atomicfiles, externalfiles, metrics, webservice
from modelhubapi.distribution import engine_version
from modelhubapi.pythonapi import ConfigError, ModelHubAPI, describe_error
from modelhubapi.safety import files
from modelhubapi.settings import Settings, SettingsError

CONTRIB_FOLDER_NAME = "contrib_src"
SYNSETS_NAME = "imagenet_synsets.txt"
_IMAGENET_FILE = re.compile(r"(n\d{8})_.*\.jpe?g", re.IGNORECASE)


class CliError(Exception):
    """A problem to report in one line and exit with status 1."""


# --- loading a package ----------------------------------------------------------------------


_CONTRIB_FILES = ("inference.py", os.path.join("model", "config.json"))


def _missing_contrib_file(folder: str) -> str | None:
    """The first file a contributor folder must have that `folder` lacks; None if complete."""
    for required in _CONTRIB_FILES:
        if not os.path.isfile(os.path.join(folder, required)):
            return required
    return None


def default_contrib_dir() -> str:
    """The current folder if it is a contributor package, else ./contrib_src."""
    here = os.getcwd()
    if _missing_contrib_file(here) is None:
        return here
    return os.path.join(here, CONTRIB_FOLDER_NAME)


def check_contrib_dir(contrib_dir: str) -> str:
    """Absolute path of a contributor folder (one with inference.py and model/config.json)."""
    contrib_dir = os.path.abspath(contrib_dir)
    missing = _missing_contrib_file(contrib_dir)
    if missing:
        raise CliError(
            f"{contrib_dir} is not a ModelHub contributor folder (no {missing}): "
            "pass --contrib DIR, or run from the package folder or the folder holding "
            f"{CONTRIB_FOLDER_NAME}/."
        )
    return contrib_dir


def load_model(contrib_dir: str) -> Any:
    """The package's `inference.Model()`, imported as ModelHub's run.py would import it.

    The working directory becomes the package folder, as in ModelHub's Docker image
    (WORKDIR /contrib_src): existing packages open `model/...` relative to it. Callers turn
    their own path arguments absolute first.
    """
    if contrib_dir not in sys.path:
        sys.path.insert(0, contrib_dir)
    os.chdir(contrib_dir)
    started = time.perf_counter()
    try:
        model = importlib.import_module("inference").Model()
    except Exception as error:
        raise CliError(f"Could not load the model in {contrib_dir}: {error}") from None
    metrics.record_model_load(time.perf_counter() - started)
    return model


def _api(contrib_dir: str, settings: Settings) -> ModelHubAPI:
    return ModelHubAPI(load_model(contrib_dir), contrib_dir, settings)


def _accepted_formats(api: ModelHubAPI) -> list[str]:
    try:
        return api.accepted_formats()
    except ConfigError as error:
        raise CliError(f"Cannot read the model's config: {error}") from None


def predict_file(api: ModelHubAPI, path: str, formats: list[str]) -> dict:
    """`api.predict(path)` after the input-safety checks (under `api.settings`);
    `{"error": ...}` on bad input."""
    if os.path.isdir(path):
        return {"error": "Is a directory: name the image files in it (for example DIR/*.jpg)."}
    if not os.path.isfile(path):
        return {"error": "File not found."}
    try:
        files.check_input_file(path, formats, api.settings)
        with files.blame_corrupt_files([path], api.settings):
            return api.predict_or_raise(path, numpyToFile=False)
    except Exception as error:
        return {"error": describe_error(error)}


# --- init ------------------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    """Fetch and verify the external files, then run the package's build hook.

    `--variant NAME` reaches the hook the way every package setting does, as MODELHUB_VARIANT
    in the environment: the package decides what its variants are and checks the name.
    """
    if args.variant:
        os.environ["MODELHUB_VARIANT"] = args.variant
    init_json = os.path.abspath(args.init_json) if args.init_json else None
    outcomes = externalfiles.run_init(
        os.path.abspath(args.contrib), init_json, build=not args.no_build, settings=args.settings
    )
    fetched = sum(outcome.source != "present" for outcome in outcomes)
    print(f"init: {len(outcomes)} external files verified, {fetched} fetched.")
    return 0


# --- predict ---------------------------------------------------------------------------------


def _format_prediction(path: str, result: dict) -> str:
    lines = [path]
    for output in result["output"]:
        if output.get("type") == "label_list":
            for rank, entry in enumerate(output["prediction"], 1):
                lines.append(f"  {rank}. {entry['probability']:7.2%}  {entry['label']}")
        else:
            lines.append(f"  {output.get('name')}: {json.dumps(output['prediction'])}")
    return "\n".join(lines)


def cmd_predict(args: argparse.Namespace) -> int:
    images = [os.path.abspath(image) for image in args.images]
    api = _api(check_contrib_dir(args.contrib), args.settings)
    formats = _accepted_formats(api)
    results = []
    with tqdm(images, desc="predict", unit="img", file=sys.stderr, disable=len(images) < 2) as bar:
        for shown, path in zip(args.images, bar, strict=True):
            result = predict_file(api, path, formats)
            results.append({"file": shown, **result})
            if "error" in result:
                bar.write(f"{shown}: error: {result['error']}", file=sys.stderr)
            elif not args.json:
                bar.write(_format_prediction(shown, result), file=sys.stdout)
    if args.json:
        print(json.dumps(results, indent=2))
    return 1 if any("error" in result for result in results) else 0


# --- evaluate --------------------------------------------------------------------------------


def find_synsets(explicit: str | None, mirrors: Sequence[str]) -> str:
    """--synsets, else imagenet_synsets.txt from the mirror folders (MODELHUB_MIRROR)."""
    if explicit:
        if not os.path.isfile(explicit):
            raise CliError(f"Synset list {explicit} not found.")
        return os.path.abspath(explicit)
    for path in externalfiles.find_in_mirrors(SYNSETS_NAME, mirrors):
        return path
    raise CliError(f"{SYNSETS_NAME} not found: pass --synsets FILE or set MODELHUB_MIRROR.")


def _read_lines(path: str) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip()]


def imagenet_files(folder: str, limit: int | None) -> list[tuple[str, str]]:
    """(path, WordNet id) of each `<wnid>_*.JPEG` file in `folder`, sorted by name."""
    if not os.path.isdir(folder):
        raise CliError(f"{folder} is not a folder.")
    files = [
        (os.path.join(folder, name), match.group(1))
        for name in sorted(os.listdir(folder))
        if (match := _IMAGENET_FILE.fullmatch(name))
    ]
    if not files:
        raise CliError(f"No ImageNet files named <wnid>_*.JPEG in {folder}.")
    return files[:limit] if limit else files


def _evaluate_one(api: ModelHubAPI, path: str, expected: str, formats: list[str]) -> dict:
    result = predict_file(api, path, formats)
    if "error" in result:
        return {"file": os.path.basename(path), "expected": expected, "error": result["error"]}
    output = result["output"][0]
    if output.get("type") != "label_list":
        raise CliError("evaluate needs a model whose first output is a label_list.")
    labels = [entry["label"] for entry in output["prediction"]]
    return {
        "file": os.path.basename(path),
        "expected": expected,
        "predicted": labels,
        "top1": labels[:1] == [expected],
        "top5": expected in labels[:5],
    }


def evaluate(
    api: ModelHubAPI, files: list[tuple[str, str]], synsets: list[str], labels: dict[str, str]
) -> dict:
    """Top-1/top-5 over `files`; an image that fails or has an unknown id counts as a miss."""
    index = {wnid: position for position, wnid in enumerate(synsets)}
    formats = _accepted_formats(api)
    results = []
    started = time.perf_counter()
    for path, wnid in tqdm(files, desc="evaluate", unit="img", file=sys.stderr):
        if wnid not in index:
            results.append({"file": os.path.basename(path), "error": f"unknown WordNet id {wnid}"})
            continue
        expected = labels.get(str(index[wnid]))
        if expected is None:
            raise CliError(f"The labels have no entry for class {index[wnid]} ({wnid}).")
        results.append(_evaluate_one(api, path, expected, formats))
    seconds = time.perf_counter() - started
    count = len(results)
    return {
        "variant": getattr(api.model, "variant", None),  # a package's own, where it has one
        "images": count,
        "errors": sum("error" in result for result in results),
        "top1": sum(result.get("top1", False) for result in results) / count,
        "top5": sum(result.get("top5", False) for result in results) / count,
        "seconds": round(seconds, 3),
        "results": results,
    }


def _table(summary: dict) -> str:
    rows = [
        ("variant", summary["variant"]),
        ("images", str(summary["images"])),
        ("errors", str(summary["errors"])),
        ("top-1", f"{summary['top1']:.3f}"),
        ("top-5", f"{summary['top5']:.3f}"),
        ("images/s", f"{summary['images'] / max(summary['seconds'], 1e-9):.1f}"),
    ]
    return "\n".join(f"{name:<10}{value:>10}" for name, value in rows)


def cmd_evaluate(args: argparse.Namespace) -> int:
    folder = os.path.abspath(args.directory)
    output = os.path.abspath(args.json) if args.json else None
    files = imagenet_files(folder, args.limit)
    synsets = _read_lines(find_synsets(args.synsets, args.settings.mirror_dirs))
    contrib_dir = check_contrib_dir(args.contrib)
    labels_path = os.path.abspath(args.labels or os.path.join(contrib_dir, "model", "labels.json"))
    try:
        with open(labels_path, encoding="utf-8") as handle:
            labels = json.load(handle)
    except (OSError, ValueError) as error:
        raise CliError(f"Cannot read the labels {labels_path}: {error}") from None
    api = _api(contrib_dir, args.settings)
    summary = {"directory": folder, **evaluate(api, files, synsets, labels)}
    print(_table(summary))
    if output:
        atomicfiles.write_atomically(output, (json.dumps(summary, indent=2) + "\n").encode())
        print(f"wrote {output}")
    return 0


# --- serve -----------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    contrib_dir = check_contrib_dir(args.contrib)
    model = load_model(contrib_dir)
    try:
        webservice.start(model, contrib_dir, settings=args.settings)
    except OSError as error:  # the port is taken, or binding it needs privileges
        address = f"{args.settings.host}:{args.settings.port}"
        raise CliError(f"Cannot serve on {address}: {error.strerror or error}.") from None
    return 0


# --- parser ----------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def build_parser(prog: str = "modelhub") -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--contrib",
        metavar="DIR",
        default=default_contrib_dir(),
        help="contributor package folder (default: the current folder if it is one, "
        f"else ./{CONTRIB_FOLDER_NAME}: %(default)s)",
    )
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run a ModelHub contributor package: set it up, classify, evaluate, serve.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {engine_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = commands.add_parser(
        "init",
        parents=[common],
        help="fetch and verify external files, then run build.py",
        description="Put the files listed in init/init.json in place (kept if their SHA-256 "
        "matches, else copied from MODELHUB_MIRROR folders or downloaded), then run the "
        "package's build.py. Safe to run again: a complete package is left untouched.",
    )
    init.add_argument(
        "--init-json",
        metavar="FILE",
        help="the package's init.json (default: ../init/init.json of --contrib)",
    )
    init.add_argument("--no-build", action="store_true", help="skip the package's build.py")
    init.add_argument(
        "--variant",
        metavar="NAME",
        help="also build this model variant, where the package has several (the same as "
        "setting MODELHUB_VARIANT; by default the one MODELHUB_VARIANT names, if any)",
    )
    init.set_defaults(handler=cmd_init)

    predict = commands.add_parser(
        "predict",
        parents=[common],
        help="classify images and print the top predictions",
        description="Run the model on each image and print its top predictions.",
    )
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="input file(s)")
    predict.add_argument("--json", action="store_true", help="print the results as JSON")
    predict.set_defaults(handler=cmd_predict)

    evaluate_parser = commands.add_parser(
        "evaluate",
        parents=[common],
        help="top-1/top-5 accuracy on ImageNet-named images",
        description="Top-1 and top-5 accuracy over a folder of <wnid>_*.JPEG files: the class "
        "of a file is the position of its WordNet id in the synset list, its expected label "
        "that class's entry in the package's model/labels.json.",
    )
    evaluate_parser.add_argument("directory", metavar="DIR", help="folder of <wnid>_*.JPEG")
    evaluate_parser.add_argument(
        "--synsets",
        metavar="FILE",
        help=f"WordNet ids in class order (default: {SYNSETS_NAME} in MODELHUB_MIRROR)",
    )
    evaluate_parser.add_argument(
        "--labels", metavar="FILE", help="class index -> label JSON (default: model/labels.json)"
    )
    evaluate_parser.add_argument("--json", metavar="OUT", help="also write the results here")
    evaluate_parser.add_argument(
        "--limit", metavar="N", type=_positive_int, help="only the first N files (sorted by name)"
    )
    evaluate_parser.set_defaults(handler=cmd_evaluate)

    serve = commands.add_parser(
        "serve",
        parents=[common],
        help="serve the REST API and web UI on HOST:PORT",
        description="Serve the REST API and web UI with the production WSGI server on "
        "HOST:PORT (environment; default 127.0.0.1:8080).",
    )
    serve.set_defaults(handler=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "modelhub") -> int:
    """Run one command; the exit status. `prog` is the name usage messages show."""
    args = build_parser(prog).parse_args(argv)
    try:
        args.settings = Settings.from_environment()  # read once, for every command
        return args.handler(args)
    except (CliError, externalfiles.InitError, SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
