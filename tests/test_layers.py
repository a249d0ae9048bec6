"""The layer contract, checked on the source (an ``ast`` equivalent of pyproject's import-linter contract,
so the suite checks it where import-linter is not installed, and adds what import-linter cannot see).

Layers, each importing only those below it (``a : b`` siblings may import each other, ``a | b`` may not)::

    cli : __main__                                     the command line
    worlds.mini                                        the mini world (uses methods and judges)
    methods | evaluators                               methods; judges and human evaluation
    worlds.synthetic                                   the procedural renderer and dataset
    leaderboard | byo | summary                        what uses finished runs and results
    run                                                runner, run folder, plan, launch, grid
    results                                            the results record, its checks and statistics
    api : backbone : contract : custom : dataset ...   the interfaces and the objects they hand over
    code_state : devices : download : errors ...       the base: imports nothing above it

Every import counts, also one inside a function: a lazy import still ties the modules. The
core reaches methods, judges and worlds only by name, through ``actionbench.api.registry``'s
lazy tables. On top of the layers, no module may take part in an import cycle, and every module
under actionbench/ must sit in a layer (import-linter's ``exhaustive``).

The scripts in benchmarks/ (run as ``python benchmarks/NAME.py``, importing each other by file name)
may import actionbench, never the reverse, and do not import each other in a cycle.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Where each package's source lives: the folder is the import name.
SOURCES = {"actionbench": REPO / "actionbench"}
BENCHMARKS = REPO / "benchmarks"
# The same strings as pyproject's [tool.importlinter] layers (checked below), top to bottom.
LAYERS = [
    "cli : __main__",
    "worlds.mini",
    "methods | evaluators",
    "worlds.synthetic",
    "leaderboard | byo | summary",
    "run",
    "results",
    "api : backbone : contract : custom : dataset : evidence : layerwise : pose : training",
    "code_state : devices : download : errors : hashing : io : manifest : pose_blazepose : raster : report",
]
# Packages with nothing to import (a docstring, or package data): outside the layers.
UNLAYERED = ("actionbench", "actionbench.worlds", "actionbench.data")
MAX_LINES = 600


def parse_layer(text: str) -> tuple[list[str], bool]:
    """(the layer's modules, whether they must be independent of each other)."""
    independent = "|" in text
    return [f"actionbench.{m.strip()}" for m in text.split("|" if independent else ":")], independent


def test_layers_are_pyprojects():
    """One contract: the ast checks here and import-linter's (``lint-imports``, in CI) read the same layers."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers" and c["containers"] == ["actionbench"]]
    assert contract["containers"] == ["actionbench"] and contract["exhaustive"]
    assert [" ".join(layer.split()) for layer in contract["layers"]] == LAYERS
    assert {f"actionbench.{m}" for m in contract["exhaustive_ignores"]} == set(UNLAYERED) - {"actionbench"}


def test_every_actionbench_import_names_a_module():
    """After files move, a stale import (say ``from .synthetic import``) is caught here, not at run time;
    the benchmark scripts' imports of actionbench too."""
    modules = module_files()
    stale = []
    for name, path in {**modules, **benchmark_files()}.items():
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
            modules[".".join([package, *parts])] = path
    return modules


def benchmark_files() -> dict[str, Path]:
    """Benchmark script -> file; a script imports another by its file name (benchmarks/ is on sys.path)."""
    return {path.stem: path for path in sorted(BENCHMARKS.glob("*.py"))}


def resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the modules of ``modules`` it imports (anywhere in its body)."""
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


def layer_of(module: str) -> int | None:
    """0 for the top layer (cli), counting down; None for a module in no layer."""
    for index, text in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in parse_layer(text)[0]):
            return index
    return None


def member_of(module: str) -> str:
    """The layer entry a module belongs to (``actionbench.methods`` for ``actionbench.methods.adi``)."""
    index = layer_of(module)
    return next(p for p in parse_layer(LAYERS[index])[0] if module == p or module.startswith(p + "."))


def test_every_module_is_in_a_layer():
    unplaced = sorted(m for m in module_files() if layer_of(m) is None and m not in UNLAYERED)
    assert not unplaced, "add these to a layer in pyproject's [tool.importlinter] and LAYERS here:\n" + "\n".join(unplaced)


def test_no_import_runs_up_the_layers():
    graph = imports(module_files())
    upward = sorted(
        f"{source} (layer {LAYERS[layer_of(source)]!r}) imports {target} (layer {LAYERS[layer_of(target)]!r})"
        for source, targets in graph.items() for target in targets
        if layer_of(source) is not None and layer_of(target) is not None and layer_of(target) < layer_of(source)
    )
    assert not upward, "imports that run up the layers:\n" + "\n".join(upward)


def test_independent_siblings_do_not_import_each_other():
    """``methods | evaluators``: a method never imports a judge nor the reverse; the same for the leaderboard,
    bring-your-own images and the run summary."""
    graph = imports(module_files())
    crossing = sorted(
        f"{source} imports {target}" for source, targets in graph.items() for target in targets
        if layer_of(source) is not None and layer_of(source) == layer_of(target)
        and parse_layer(LAYERS[layer_of(source)])[1] and member_of(source) != member_of(target)
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
    files = [*module_files().values(), *benchmark_files().values()]
    long = sorted(f"{path.relative_to(REPO)} ({n} lines)" for path in files
                  if (n := len(path.read_text().splitlines())) > MAX_LINES)
    assert not long, "split these by concern:\n" + "\n".join(long)


def test_no_package_files_outside_actionbench():
    """methods/, evaluators/ and data/ live inside actionbench/ (a file's path is its import name): a file
    left at the old places (say a branch that added data/mini-v3c/ before the move) would not be packaged."""
    stray = sorted(str(path.relative_to(REPO)) for folder in ("methods", "evaluators", "data")
                   for path in (REPO / folder).rglob("*") if path.is_file() and "__pycache__" not in path.parts)
    assert not stray, "move these under actionbench/ (git mv):\n" + "\n".join(stray)


def test_actionbench_never_imports_the_benchmarks():
    """The benchmarks measure the package; the package must work without the scripts beside it."""
    scripts = set(benchmark_files()) | {"benchmarks"}
    found = sorted(
        f"{path.relative_to(REPO)}:{node.lineno} imports {name}"
        for path in module_files().values() for node in ast.walk(ast.parse(path.read_text(), str(path)))
        for name in ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
        if name.split(".")[0] in scripts
    )
    assert not found, "\n".join(found)


def test_no_import_cycles_among_the_benchmarks():
    """A shared piece of two scripts goes down into the lower one (or _common.py), so each runs alone."""
    graph = imports(benchmark_files())
    cycles = strongly_connected(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_contract_sees_a_violation(tmp_path, monkeypatch):
    """The checker itself works: a core module importing a world is found, and so is a benchmark cycle."""
    core = tmp_path / "actionbench"
    (core / "worlds" / "mini").mkdir(parents=True)
    (core / "__init__.py").write_text("")
    (core / "worlds" / "__init__.py").write_text("")
    (core / "worlds" / "mini" / "__init__.py").write_text("X = 1\n")
    (core / "backbone.py").write_text("def f():\n    from .worlds.mini import X\n    return X\n")
    monkeypatch.setitem(SOURCES, "actionbench", core)
    graph = imports(module_files())
    assert graph["actionbench.backbone"] == {"actionbench.worlds.mini"}
    assert layer_of("actionbench.worlds.mini") < layer_of("actionbench.backbone")

    (tmp_path / "a.py").write_text("def f():\n    from b import g\n")
    (tmp_path / "b.py").write_text("import a\n")
    monkeypatch.setattr(sys.modules[__name__], "BENCHMARKS", tmp_path)
    assert strongly_connected(imports(benchmark_files())) == [["a", "b"]]


def test_the_mini_runtime_never_imports_its_lab():
    """A run loads the world, never its training, fitting and measuring tools (pyproject's second contract)."""
    graph = imports(module_files())
    lab = "actionbench.worlds.mini.lab"
    runtime = [m for m in graph if m.startswith("actionbench.worlds.mini") and not m.startswith(lab)]
    assert runtime and not [f"{m} imports {t}" for m in runtime for t in graph[m] if t.startswith(lab)]
