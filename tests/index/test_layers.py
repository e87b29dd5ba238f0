"""Issue 13: the index build path does not zig-zag. Storage owns the on-disk format (and imports
no stage), search reads through storage, build owns stage 2 and is the only user of tune/train."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "zsvl"

# module -> zsvl.index modules it may import (directly or inside functions)
ALLOWED = {
    "backend": set(),
    "gpu": {"backend"},
    "shards": set(),
    "choose": set(),
    "storage": {"backend", "shards"},
    "encode": {"storage", "shards"},
    "tune": {"backend", "shards"},
    "train": {"backend", "choose"},
    "search": {"storage", "backend", "gpu"},
    "build": {"storage", "backend", "choose", "encode", "gpu", "search", "shards", "train", "tune"},
    "recipe": {"storage", "search", "build"},
}


def _index_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("zsvl.index."):
                found.add(node.module.split(".")[2])
            elif node.module == "zsvl.index":
                found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[2] for a in node.names if a.name.startswith("zsvl.index.")}
    return found


def test_index_modules_import_only_downwards() -> None:
    modules = {p.stem for p in (PACKAGE / "index").glob("*.py") if p.stem != "__init__"}
    assert modules == set(ALLOWED), "a new module: place it in ALLOWED"
    for name in modules:
        extra = _index_imports(PACKAGE / "index" / f"{name}.py") - ALLOWED[name]
        assert not extra, f"zsvl/index/{name}.py imports {sorted(extra)}"


def test_only_build_uses_tune_and_train() -> None:
    users = {
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if {"tune", "train"} & _index_imports(p)
    }
    assert users == {"index/build.py"}
