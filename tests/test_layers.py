"""The package reads as its data flow: no import circles, and no module imports a layer above its own.

Every import is found in the source (AST, function-level imports included), so a lazy import that
hides a circle or an upward arrow fails here too. Layers, low to high (README, "Layout"):
core -> data -> baselines -> prior -> losses -> restorers -> train -> evaluate -> report -> graph -> jobs
-> experiment -> paper -> the commands (pipeline, preflight, listing, cli). Code found by name at run
time (registries' autoload strings, entry points) is how a lower layer reaches plugins without an arrow.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("bench", "bench.errors", "bench.registry", "bench.paths", "bench.hashing", "bench.io", "bench.faults",
              "bench.preempt", "bench.plugins", "bench.ui", "bench.costs", "bench.provenance", "bench.config",
              "bench.weights", "bench.weights_build")),
    ("data", ("bench.data",)),
    ("baselines", ("baselines",)),
    ("prior", ("bench.prior",)),
    ("losses", ("bench.losses",)),
    ("restorers", ("bench.restorers",)),
    ("train", ("bench.train",)),
    ("evaluate", ("bench.evaluate", "bench.restore", "bench.fidelity")),
    ("report", ("bench.report",)),
    ("graph", ("bench.graph",)),
    ("jobs", ("bench.jobs",)),
    ("experiment", ("bench.experiment",)),
    ("paper", ("bench.paper",)),
    ("commands", ("bench.pipeline", "bench.preflight", "bench.listing", "bench.cli", "bench.cli_graph_options")),
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for root in ("bench", "baselines") for p in (REPO / root).rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Our modules that ``name`` imports anywhere in its source (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()

    def resolve(mod: str) -> str | None:
        while mod and mod not in known:
            mod = mod.rpartition(".")[0]
        return mod or None

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base
                                                                                                    else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for t in targets:
            if t.split(".")[0] in ("bench", "baselines") and (m := resolve(t)) and m != name:
                out.add(m)
    return out


def layer_of(name: str) -> int:
    best, level = -1, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (name == p or name.startswith(p + ".")) and len(p) > best:
                best, level = len(p), i
    assert level >= 0, f"{name} belongs to no layer: add it to LAYERS"
    return level


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: _imports(name, path, set(mods)) for name, path in mods.items()}


def test_every_module_has_a_layer_and_imports_none_above_it() -> None:
    graph = _graph()
    up = sorted(f"{m} ({LAYERS[layer_of(m)][0]}) imports {d} ({LAYERS[layer_of(d)][0]})"
                for m, deps in graph.items() for d in deps if layer_of(d) > layer_of(m))
    assert not up, "\n".join(up)


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle a depth-first walk meets (as module chains back to their start)."""
    colour: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(m: str) -> None:
        colour[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if colour.get(d) == 1:
                cycles.append([*stack[stack.index(d):], d])
            elif d not in colour:
                visit(d)
        stack.pop()
        colour[m] = 2

    for m in sorted(graph):
        if m not in colour:
            visit(m)
    return cycles


def test_no_import_circles() -> None:
    cycles = find_cycles(_graph())
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_an_upward_and_a_circular_import(tmp_path: Path) -> None:
    """The tests can fail: a planted lazy import of a higher layer, and a circle, are both found."""
    lower = REPO / "bench" / "data" / "smoke.py"
    tmp = tmp_path / "smoke.py"
    tmp.write_text(lower.read_text() + "\n\ndef _planted():\n    from bench.paper import table1  # noqa: F401\n")
    deps = _imports("bench.data.smoke", tmp, set(_modules()))
    assert "bench.paper.table1" in deps and layer_of("bench.paper.table1") > layer_of("bench.data.smoke")
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
