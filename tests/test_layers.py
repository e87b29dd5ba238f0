"""The package's imports follow DESIGN.md's layer order and close no cycle.

Every ``import zsvl...`` / ``from zsvl... import`` in the package counts, deferred ones inside
functions included: a deferred import that goes up the layers is still a dependency (it only hides
the cycle from the interpreter). Imports under ``if TYPE_CHECKING:`` are for annotations only and
do not count. Layers, lowest first:

    base     errors, paths, _atomic, _version, ... , classes, the toy world's data generators
    data     image input, datasets, splits, few-shot sampling, caption corpora
    models   encoders
    embed    batched encoding + cache
    text     templates, descriptors, LLM        index  FAISS caption indexes
    methods  classifiers
    eval     metrics, protocol, suite runner, reports
    api      the front door (classify, explain_images, saved classifiers), toy training
    cli      command line, service, package root
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import zsvl

PACKAGE = Path(zsvl.__file__).parent

# Most specific prefix wins; a module not covered fails the test so that new top-level modules
# get a place on purpose.
LAYERS: dict[str, int] = {
    "zsvl._version": 0,
    "zsvl.errors": 0,
    "zsvl.paths": 0,
    "zsvl.arrays": 0,
    "zsvl.classes": 0,
    "zsvl._atomic": 0,
    "zsvl._hashing": 0,
    "zsvl._lazy": 0,
    "zsvl._progress": 0,
    "zsvl.toy": 0,  # the synthetic world: renderer, captions, suite writer, model definition
    "zsvl.data": 1,
    "zsvl.models": 2,
    "zsvl.embed": 3,
    "zsvl.text": 4,
    "zsvl.index": 4,
    "zsvl.methods": 5,
    "zsvl.distributed": 4,  # Ray engines for the index build (encode, fill)
    "zsvl.eval": 6,
    "zsvl.distributed.eval": 6,  # the suite's runs on Ray
    "zsvl.api": 7,
    "zsvl.fitting": 7,
    "zsvl.persist": 7,
    "zsvl.persist_codec": 7,
    "zsvl.support": 7,
    "zsvl.toy.train": 7,  # trains the toy CLIP with the models' text forward
    "zsvl.toy.evaluate": 7,
    "zsvl.cli": 8,
    "zsvl.cli_descriptors": 8,
    "zsvl.cli_index": 8,
    "zsvl.cli_eval": 8,
    "zsvl.cli_args": 8,
    "zsvl.cli_classify": 8,
    "zsvl.serve": 8,
    "zsvl": 9,  # the package root re-exports the public API lazily
}
# Sub-packages of the same layer that must not import each other either way.
SIBLINGS_APART = [("zsvl.text", "zsvl.index")]


def _module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _layer(module: str) -> int:
    best = None
    for prefix in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best):
                best = prefix
    assert best is not None, f"{module} has no layer in tests/test_layers.py: give it one"
    return LAYERS[best]


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            test = getattr(child, "test", None)
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(test):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def _imports(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> zsvl modules it imports (resolved to existing modules, not names)."""
    modules = {_module_name(p, package): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")
                    base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                targets = [f"{mod}.{a.name}" for a in node.names] + [mod]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                if target.startswith("zsvl") and target in modules:
                    if target != name:
                        graph[name].add(target)
                    break
    return graph


def _violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for src, targets in graph.items():
        for dst in targets:
            if _layer(dst) > _layer(src):
                bad.append(f"{src} (layer {_layer(src)}) imports {dst} (layer {_layer(dst)})")
            for a, b in SIBLINGS_APART:
                for x, y in ((a, b), (b, a)):
                    if src.startswith(x + ".") and dst.startswith(y + "."):
                        bad.append(f"{src} imports its sibling layer {dst}")
    return bad


def test_no_import_goes_up_the_layers():
    bad = _violations(_imports())
    assert not bad, "imports against DESIGN.md's layer order:\n" + "\n".join(sorted(bad))


def test_no_import_cycle():
    graph = _imports()
    # Package __init__ files re-export their children; an edge child -> own package is a cycle
    # only through the parent, so drop parent edges of a package's own modules.
    edges = {s: {d for d in ds if not s.startswith(d + ".")} for s, ds in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
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
                cycles.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_checker_sees_a_planted_violation(tmp_path):
    """The rule can fail: a data module that imports eval inside a function is caught, one that
    imports it only for annotations is not."""
    pkg = tmp_path / "zsvl"
    for name, text in {
        "__init__.py": "",
        "data/__init__.py": "",
        "data/splits.py": "def f():\n    from zsvl.eval.runner import run\n",
        "data/types.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from zsvl.eval.runner import run\n",
        "eval/__init__.py": "",
        "eval/runner.py": "from zsvl.data import splits\n",
    }.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text)
    bad = _violations(_imports(pkg))
    assert bad == ["zsvl.data.splits (layer 1) imports zsvl.eval.runner (layer 6)"]
