"""The shape of the code: stages as packages, dependencies pointing one way, no import cycles.

Every import in archiver/ counts, those inside functions too (the command line imports each
command's library when it runs). Layers, from the bottom: foundations; what knows bytes (WARC
records, page content); what reads inputs and the network (seeds, fetch); the indexes; capture
and replay; the commands; the command line. A module imports from its own layer or below, and two
packages of one layer do not import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "archiver"

LAYERS: list[set[str]] = [
    {"archiver", "archiver.errors", "archiver._fs", "archiver._process", "archiver._arrow", "archiver._dask",
     "archiver.config", "archiver.collection", "archiver.storage"},
    {"archiver.warc", "archiver.extract"},
    {"archiver.seeds", "archiver.fetch"},
    {"archiver.index"},
    {"archiver.capture", "archiver.replay"},
    {"archiver.init", "archiver.verify", "archiver.export", "archiver.search", "archiver.wacz", "archiver.status",
     "archiver.watch", "archiver.demo", "archiver.history"},
    {"archiver.cli", "archiver.__main__"},
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, known: set[str]) -> set[str]:
    """The archiver modules `path` imports (a `from package import name` of a module counts as that module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "archiver")
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import; archiver imports itself by absolute names"
            if node.module is None or node.module.split(".")[0] != "archiver":
                continue
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in known else node.module)
    return found


def unit(module: str) -> str:
    """The unit a module belongs to: its package under archiver/, or itself when it is top-level."""
    parts = module.split(".")
    return ".".join(parts[:2])


def layer(module: str) -> int:
    for number, units in enumerate(LAYERS):
        if unit(module) in units:
            return number
    raise AssertionError(f"{module} belongs to no layer of tests/test_architecture.py: give it one")


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports(path, known) - {name} for name, path in found.items()}


def test_every_module_has_a_layer() -> None:
    for name in modules():
        layer(name)


def test_dependencies_point_down() -> None:
    wrong = []
    for name, targets in graph().items():
        for target in targets:
            if layer(target) > layer(name):
                wrong.append(f"{name} imports {target}, a layer above it")
            elif (layer(target) == layer(name) and unit(target) != unit(name) and "." in name.removeprefix("archiver.")
                  and "." in target.removeprefix("archiver.")):
                wrong.append(f"{name} imports {target}: two packages of one layer must not depend on each other")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycles() -> None:
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("package", sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()))
def test_a_package_face_imports_nothing(package: str) -> None:
    """Importing one module of a stage must not load the others (capture workers import little)."""
    tree = ast.parse((PACKAGE / package / "__init__.py").read_text(encoding="utf-8"))
    assert not [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]
