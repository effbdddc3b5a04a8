"""The engine uses its web libraries (httptools, Werkzeug, Flask; waitress, should it come back)
through their documented API only: a lint over framework/ and benchmarks/ (the source,
parsed) for the ways code reaches past it: a class derived from theirs, in a module that
imports them a private attribute (`x._name`) of anything but the object's own class, a
private keyword argument (`_dispatcher=`), an import of a private module. There are no
exceptions: a library that cannot do what the service needs is replaced, not patched.
"""

from __future__ import annotations

import ast
import os

from squeezenet_support import REPO_DIR

LIBRARIES = ("httptools", "waitress", "werkzeug", "flask")
SCANNED = ("framework", "benchmarks")


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
    return _uses_in(tree, os.path.relpath(path, REPO_DIR))


def _uses_in(tree: ast.Module, relative: str) -> set[tuple[str, str]]:
    origins = _origins(tree)
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


def test_nothing_reaches_past_the_libraries_public_api():
    assert set().union(*map(_uses, _python_files())) == set()


def test_the_lint_finds_each_kind_of_reach():
    """The lint itself: each pattern it looks for, in a module that imports a library."""
    source = (
        "import httptools\nfrom waitress.channel import HTTPChannel\n"
        "from werkzeug._internal import x\n"
        "class Mine(HTTPChannel):\n    pass\n"
        "httptools.HttpRequestParser(p)._cparser\nserve(app, _dispatcher=None)\n"
    )
    found = {what for _, what in _uses_in(ast.parse(source), "example.py")}
    assert found == {
        "subclass Mine(waitress.channel.HTTPChannel)",
        "private attribute httptools.HttpRequestParser(p)._cparser",
        "private keyword _dispatcher=",
        "private module werkzeug._internal",
    }
