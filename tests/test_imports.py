"""The import graph of megc's packages: imports flow downward only and never in a circle.

Layers, top to bottom: deployment, flows -> tasks -> models -> storage, sql. Every import counts, also the ones
inside functions (the CLI defers heavy imports, but a deferred import is still a dependency) and
`importlib.import_module(f"package.{name}")`, which counts as importing every module under that package.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYER = {"storage": 0, "sql": 0, "models": 1, "tasks": 2, "flows": 3, "deployment": 3}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for top in LAYER for p in (ROOT / top).rglob("*.py")}


def _imports(path: Path, name: str, known: dict[str, Path]) -> set[str]:
    """megc modules that `path` imports (a `from package import module` names the module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "importlib.import_module" and node.args \
                and isinstance(node.args[0], ast.JoinedStr) and isinstance(node.args[0].values[0], ast.Constant):
            prefix = str(node.args[0].values[0].value)  # f"flows.commands.{name}": any module under the prefix
            targets = [m for m in known if m.startswith(prefix)]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:  # `import a.b.c` of a name inside a module: its module
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {name: _imports(path, name, known) for name, path in known.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def test_the_graph_is_read():
    graph = _graph()
    assert "storage.workspace" in graph["storage.ingest"] and "tasks.vqa_labels" in graph["tasks.score_vqa"]
    assert "storage.adapters.casme3" in graph["storage.adapters"]  # `from storage.adapters import casme3`
    assert "flows.commands.vqa" in graph["flows.cli"]  # loaded with importlib.import_module


def test_no_upward_imports():
    up = sorted(f"{a} -> {b}" for a, targets in _graph().items() for b in targets
                if LAYER[b.split(".")[0]] > LAYER[a.split(".")[0]])
    assert up == []


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_no_cycles_between_packages():
    graph = _graph()
    top: dict[str, set[str]] = {}
    for a, targets in graph.items():
        pa = a.split(".")[0]
        top.setdefault(pa, set()).update(b.split(".")[0] for b in targets if b.split(".")[0] != pa)
    assert _cycles(top) == []
