"""The README head that ModelHub's readme_generator.py makes from config.json: the title, its
sentence about ModelHub, and the meta, publication and model tables, row for row.

ModelHub's generator is Python 2 code; this is the same output, for the test that keeps the
README in step with config.json. Run as a script to rewrite the README's head after editing
config.json: `python tests/modelhub_readme.py`.
"""

from __future__ import annotations

import json
import os
import sys

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README_PATH = os.path.join(REPO_DIR, "README.md")
CONFIG_PATH = os.path.join(REPO_DIR, "contrib_src", "model", "config.json")
# Where the generated head ends: the generator's next section, which this README replaces.
END_MARKER = "<!-- end of the tables ModelHub's readme_generator.py makes from config.json -->"

_META = ("application_area", "task", "task_extended", "data_type", "data_source")
_PUBLICATION = ("title", "source", "url", "year", "authors", "abstract", "google_scholar", "bibtex")
_MODEL = ("description", "provenance", "architecture", "learning_type", "format")


def _table(section: dict, keys: tuple[str, ...], first: tuple[str, str] | None = None) -> list:
    rows = ["| | |", "|-|-|"]
    if first:
        rows.append(f"| {first[0]} | {first[1]} | ")
    rows += [f"| {key} | {section[key]} | " for key in keys if key in section]
    return rows


def readme_head(config: dict) -> str:
    """The generator's lines up to and including the model table."""
    name = config["meta"]["name"]
    lines = [
        f"# {name}",
        f"This repository hosts the contributor source files for the {name} model. ModelHub "
        "integrates these files into an engine and controlled runtime environment. A unified "
        "API allows for out-of-the-box reproducible implementations of published models. For "
        "more information, please visit [www.modelhub.ai](http://modelhub.ai/) or contact us "
        "[info@modelhub.ai](mailto:info@modelhub.ai).",
        "## meta",
        *_table(config["meta"], _META, first=("id", config["id"])),
    ]
    if "publication" in config:
        lines += ["## publication", *_table(config["publication"], _PUBLICATION)]
    lines += [
        "## model",
        *_table(config["model"], _MODEL),
        "| I/O | model I/O can be viewed [here](contrib_src/model/config.json) | ",
        "| license | model license can be viewed [here](contrib_src/license/model) | ",
    ]
    return "\n".join(lines) + "\n"


def load_config() -> dict:
    with open(CONFIG_PATH, encoding="utf-8") as handle:
        config = json.load(handle)
    config["publication"]["year"] = str(config["publication"]["year"])  # str(), as ModelHub's
    return config


def main() -> None:
    with open(README_PATH, encoding="utf-8") as handle:
        readme = handle.read()
    rest = readme.split(END_MARKER, 1)[1] if END_MARKER in readme else "\n" + readme
    with open(README_PATH, "w", encoding="utf-8") as handle:
        handle.write(readme_head(load_config()) + END_MARKER + rest)


if __name__ == "__main__":
    sys.exit(main())
