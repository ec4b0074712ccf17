"""The library's floors, checked from its source (no imports executed).

Every ``import`` in ``src/lamo`` — at module level *and* inside functions — is an edge of the
import graph. Two rules hold (docs/design.md, architecture):

* **no circles**: the graph has no strongly connected component with more than one module (a lazy,
  function-level import still makes a circle: it only hides it until the function runs);
* **no floor reaches up**: the method (motion algebra, parametrization, losses, the prior, guidance)
  never imports the floors built on it (adapters, pipelines, training, evals, commands, demo, Hub
  sharing), and the adapters never import the pipelines, trainers, evaluations or commands.

Run ``python tests/test_architecture.py`` to print the graph's circles and upward edges.
"""
from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "lamo"

# Floors, bottom to top. A module may import from its own floor or any floor below it.
# Modules not listed (errors, video_io, physics, ...) are utilities outside the rule.
METHOD = ("lamo.motion", "lamo.parametrization", "lamo.losses", "lamo.prior", "lamo.guidance")
ABOVE_METHOD = (
    "lamo.adapters", "lamo.pipelines", "lamo.commands", "lamo.demo", "lamo.model_card", "lamo.evals",
    "lamo.training", "lamo.cli", "lamo.cache", "lamo.convert", "lamo.prior_quality", "lamo.effect",
    "lamo.sharding", "lamo.lora_export", "lamo.sampling", "lamo.evaluation", "lamo.explain",
)
ADAPTERS = ("lamo.adapters",)
ABOVE_ADAPTERS = ("lamo.pipelines", "lamo.commands", "lamo.demo", "lamo.evals", "lamo.training", "lamo.cli",
                  "lamo.model_card", "lamo.effect", "lamo.lora_export", "lamo.sampling", "lamo.evaluation",
                  "lamo.explain")


def _modules(src: Path = SRC) -> dict[str, Path]:
    """Dotted module name → file, for every ``.py`` under ``src/lamo``."""
    out = {}
    for path in sorted((src / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute dotted name a (possibly relative) ``from … import`` refers to."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    """Module → the ``lamo`` modules it imports anywhere in its body (functions included).

    ``from pkg import name`` points at ``pkg.name`` when that is a module, else at ``pkg``. Parent
    packages that Python runs implicitly are not edges: the graph shows what each file asks for.
    """
    modules = _modules(src)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, is_package, node)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            for target in targets:
                # `import lamo.x.y` or a name inside a module: climb to the nearest known module.
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != module:
                    edges.add(target)
        graph[module] = edges
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted, largest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

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
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(components, key=lambda c: (-len(c), c))


def _within(module: str, floors: tuple[str, ...]) -> bool:
    return any(module == f or module.startswith(f + ".") for f in floors)


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """``(importer, imported)`` pairs where a lower floor imports a higher one."""
    bad = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if _within(module, METHOD) and _within(target, ABOVE_METHOD):
                bad.append((module, target))
            elif _within(module, ADAPTERS) and _within(target, ABOVE_ADAPTERS):
                bad.append((module, target))
    return bad


# ------------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------------


def test_graph_sees_function_level_and_relative_imports(tmp_path):
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..a import x\n    import lamo.c\n")
    (pkg / "c.py").write_text("")
    graph = import_graph(tmp_path)
    assert graph["lamo.a"] == {"lamo.sub.b"}
    assert graph["lamo.sub.b"] == {"lamo.a", "lamo.c"}
    assert import_cycles(graph) == [["lamo.a", "lamo.sub.b"]]


def test_no_import_cycles():
    cycles = import_cycles(import_graph())
    assert not cycles, "import circles in src/lamo (move the code to the floor it belongs on): " + "; ".join(
        " ↔ ".join(c) for c in cycles
    )


def test_no_floor_reaches_up():
    bad = upward_imports(import_graph())
    assert not bad, "lower floors import higher ones: " + ", ".join(f"{a} → {b}" for a, b in bad)


def test_floor_lists_name_real_modules():
    modules = set(_modules())
    for floor in METHOD + ABOVE_METHOD + ABOVE_ADAPTERS:
        assert any(m == floor or m.startswith(floor + ".") for m in modules), f"{floor} names no module"


if __name__ == "__main__":
    g = import_graph()
    cycles = import_cycles(g)
    print(f"{len(g)} modules, {sum(map(len, g.values()))} import edges, {len(cycles)} circle(s)")
    for c in cycles:
        print("  circle:", " ↔ ".join(c))
    for a, b in upward_imports(g):
        print(f"  upward: {a} → {b}")
