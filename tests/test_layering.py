"""The tree is the architecture: imports point down the layers, no cycles, small modules.

Layers of ``index`` from the bottom: text, models, storage, retrieval, writing,
cluster, evaluation (the top-level errors, settings, tracing and version sit beside them);
``service`` sits on top. Imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["text", "models", "storage", "retrieval", "writing", "cluster", "evaluation"]
MAX_LINES = 420


def _modules() -> dict[str, Path]:
    found = {}
    for package in ("index", "service"):
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                full = f"{target}.{alias.name}"
                out.add(full if full in modules else target)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return {m for m in out if m in modules and m != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] == "service":
        return len(LAYERS)
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_no_import_cycles() -> None:
    graph = _graph()

    def package_of(module: str, other: str) -> bool:  # a package's __init__ re-exporting its own modules
        return other.startswith(module + ".") or module.startswith(other + ".")

    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in graph[node]:
            if package_of(node, nxt):
                continue
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(nxt) :] + [nxt]))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module)


def test_imports_point_down_the_layers() -> None:
    upward = []
    for module, imported in _graph().items():
        mine = _layer(module)
        for other in imported:
            theirs = _layer(other)
            if mine is not None and theirs is not None and theirs > mine:
                upward.append(f"{module} imports {other}")
            if module.startswith("index") and other.startswith("service"):
                upward.append(f"{module} imports {other}")
    assert not upward, upward


def test_the_service_imports_only_the_library_s_public_face() -> None:
    """``service`` reaches the library through ``index`` (its ``__init__``) alone, never a module inside it."""
    inside = []
    for name, path in _modules().items():
        if not name.startswith("service"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").startswith("index."):
                inside.append(f"{name} imports {node.module}")
            elif isinstance(node, ast.Import):
                inside += [f"{name} imports {a.name}" for a in node.names if a.name.startswith("index.")]
            elif isinstance(node, ast.ImportFrom) and node.module == "index":
                modules = _modules()
                inside += [f"{name} imports index.{a.name}" for a in node.names if f"index.{a.name}" in modules]
    assert not inside, inside


def test_modules_are_small() -> None:
    large = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not large, large
