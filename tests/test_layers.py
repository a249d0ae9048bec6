"""The layer contract, checked on the source (an ``ast`` equivalent of import-linter's contracts).

Layers, each importing only those below it::

    actionbench.cli                                   the command line
    actionbench.worlds.mini.lab                       the mini world's lab: training, fitting, measuring, checks
    actionbench.worlds.mini                           the mini world a run needs (uses methods and judges)
    actionbench.methods | actionbench.evaluators      methods; judges and human evaluation
    actionbench.worlds.synthetic                      the procedural renderer and dataset
    core                                              everything else in actionbench/

Every import counts, also one inside a function: a lazy import still ties the modules. The
core reaches methods, judges and worlds only by name, through ``actionbench.registry``'s
lazy tables. On top of the layers, no module may take part in an import cycle.
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Where each package's source lives (pyproject's package-dir).
SOURCES = {"actionbench": REPO / "actionbench", "actionbench.methods": REPO / "methods",
           "actionbench.evaluators": REPO / "evaluators"}
LAYERS = [
    ("cli", ("actionbench.cli", "actionbench.__main__")),
    ("mini lab", ("actionbench.worlds.mini.lab",)),  # before its parent: the first layer whose prefix matches wins
    ("mini world", ("actionbench.worlds.mini",)),
    ("methods and judges", ("actionbench.methods", "actionbench.evaluators")),
    ("synthetic world", ("actionbench.worlds.synthetic",)),
]
MAX_LINES = 600


def test_every_actionbench_import_names_a_module():
    """After files move, a stale import (say ``from .synthetic import``) is caught here, not at run time."""
    modules = module_files()
    stale = []
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                base = resolve(name, path.name == "__init__.py", node)
                names = [base]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            stale += [f"{path.relative_to(REPO)}:{node.lineno} imports {n}" for n in names
                      if n.split(".")[0] == "actionbench" and n not in modules]
    assert not stale, "\n".join(stale)


def module_files() -> dict[str, Path]:
    modules = {}
    for package, root in SOURCES.items():
        for path in root.rglob("*.py"):
            rel = path.relative_to(root).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([package, *parts])
            if package == "actionbench" and parts and parts[0] in ("methods", "evaluators"):
                continue
            modules[name] = path
    return modules


def resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the actionbench modules it imports (anywhere in its body)."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = resolve(name, path.name == "__init__.py", node)
                found = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in found:
                # the longest known module the import names (``from pkg import mod`` names pkg.mod)
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def layer_of(module: str) -> int:
    """0 for the top layer (cli), len(LAYERS) for the core."""
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    return len(LAYERS)


def layer_name(index: int) -> str:
    return LAYERS[index][0] if index < len(LAYERS) else "core"


def test_no_import_runs_up_the_layers():
    graph = imports(module_files())
    upward = sorted(
        f"{source} ({layer_name(layer_of(source))}) imports {target} ({layer_name(layer_of(target))})"
        for source, targets in graph.items() for target in targets
        if layer_of(target) < layer_of(source)
    )
    assert not upward, "imports that run up the layers:\n" + "\n".join(upward)


def test_methods_and_judges_do_not_import_each_other():
    graph = imports(module_files())
    crossing = sorted(
        f"{source} imports {target}" for source, targets in graph.items() for target in targets
        if (source.startswith("actionbench.methods") and target.startswith("actionbench.evaluators"))
        or (source.startswith("actionbench.evaluators") and target.startswith("actionbench.methods"))
    )
    assert not crossing, "\n".join(crossing)


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the components with more than one module are the import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles():
    graph = imports(module_files())
    # a package's __init__ re-exporting its own submodules is not a cycle between concerns
    graph = {m: {t for t in ts if not m.startswith(t + ".") and not t.startswith(m + ".")} for m, ts in graph.items()}
    cycles = strongly_connected(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_no_module_over_600_lines():
    long = sorted(f"{path.relative_to(REPO)} ({n} lines)" for path in module_files().values()
                  if (n := len(path.read_text().splitlines())) > MAX_LINES)
    assert not long, "split these by concern:\n" + "\n".join(long)


def test_the_contract_sees_a_violation(tmp_path, monkeypatch):
    """The checker itself works: a core module importing a world is found."""
    core = tmp_path / "actionbench"
    (core / "worlds" / "mini").mkdir(parents=True)
    (core / "__init__.py").write_text("")
    (core / "worlds" / "__init__.py").write_text("")
    (core / "worlds" / "mini" / "__init__.py").write_text("X = 1\n")
    (core / "backbone.py").write_text("def f():\n    from .worlds.mini import X\n    return X\n")
    monkeypatch.setitem(SOURCES, "actionbench", core)
    monkeypatch.setitem(SOURCES, "actionbench.methods", tmp_path / "none")
    monkeypatch.setitem(SOURCES, "actionbench.evaluators", tmp_path / "none")
    graph = imports(module_files())
    assert graph["actionbench.backbone"] == {"actionbench.worlds.mini"}
    assert layer_of("actionbench.worlds.mini") < layer_of("actionbench.backbone")


def test_the_mini_lab_sits_above_the_mini_world():
    """A run loads the world, never its training, fitting and measuring tools."""
    assert layer_of("actionbench.worlds.mini.lab.train") < layer_of("actionbench.worlds.mini.judge")
    assert layer_name(layer_of("actionbench.worlds.mini.lab")) == "mini lab"
