"""The engine uses waitress, Werkzeug and Flask through their documented API: a lint over
framework/ and benchmarks/ (the source, parsed) for the ways code reaches past it: a class
derived from theirs, in a module that imports them a private attribute (`x._name`) of
anything but the object's own class, a private keyword argument (`_dispatcher=`), an import
of a private module.

What remains is listed in `KNOWN` with its reason, and the list must match exactly: a new
use fails the test, and so does one that was removed (so the list stays true).
"""

from __future__ import annotations

import ast
import os

from squeezenet_support import REPO_DIR

LIBRARIES = ("waitress", "werkzeug", "flask")
SCANNED = ("framework", "benchmarks")

# (file, what): why each is still needed. waitress decides a body's fate from its headers
# inside its parser and channel, before any WSGI app runs; its documented options give no
# JSON answer there, no per-request limit, no refusal of `Expect: 100-continue`, and no
# closing of a connection whose request had both Content-Length and Transfer-Encoding.
KNOWN = {
    ("framework/modelhubapi/webservice.py", "subclass _JSONErrorTask(waitress.task.ErrorTask)"),
    (
        "framework/modelhubapi/webservice.py",
        "subclass _UploadLimitedParser(waitress.parser.HTTPRequestParser)",
    ),
    ("framework/modelhubapi/webservice.py", "subclass _Channel(waitress.channel.HTTPChannel)"),
}


def _python_files() -> list[str]:
    found = []
    for top in SCANNED:
        for folder, _, names in os.walk(os.path.join(REPO_DIR, top)):
            found += [os.path.join(folder, name) for name in names if name.endswith(".py")]
    return sorted(found)


def _origins(tree: ast.Module) -> dict[str, str]:
    """Local name -> dotted origin, for names imported from the libraries."""
    origins = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                origins[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                origins[alias.asname or alias.name] = alias.name
    return {name: origin for name, origin in origins.items() if origin.startswith(LIBRARIES)}


def _dotted(node: ast.expr, origins: dict[str, str]) -> str:
    if isinstance(node, ast.Name):
        return origins.get(node.id, node.id)
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value, origins)}.{node.attr}"
    return ""


def _own(owner: ast.expr) -> bool:
    """`self`, `cls` or `super()`: a class's own attributes."""
    if isinstance(owner, ast.Call):
        return isinstance(owner.func, ast.Name) and owner.func.id == "super"
    return isinstance(owner, ast.Name) and owner.id in ("self", "cls")


def _is_private_module(module: str | None) -> bool:
    return bool(module) and module.startswith(LIBRARIES) and any(map(_private, module.split(".")))


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _uses(path: str) -> set[tuple[str, str]]:
    with open(path, encoding="utf-8") as file:
        tree = ast.parse(file.read())
    origins = _origins(tree)
    relative = os.path.relpath(path, REPO_DIR)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for base in map(lambda b: _dotted(b, origins), node.bases):
                if base.startswith(LIBRARIES):
                    found.add((relative, f"subclass {node.name}({base})"))
        elif isinstance(node, ast.Attribute) and _private(node.attr) and origins:
            if not _own(node.value):
                found.add((relative, f"private attribute {ast.unparse(node)}"))
        elif isinstance(node, ast.keyword) and node.arg and _private(node.arg):
            found.add((relative, f"private keyword {node.arg}="))
        elif isinstance(node, ast.ImportFrom) and _is_private_module(node.module):
            found.add((relative, f"private module {node.module}"))
    return found


def test_only_the_known_reasons_reach_past_the_libraries_public_api():
    found = set().union(*map(_uses, _python_files()))
    assert found - KNOWN == set(), "new uses of private library API"
    assert KNOWN - found == set(), "listed uses that are gone: remove them from KNOWN"
