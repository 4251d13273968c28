"""The import directions the README's Layout section states, checked on every module's imports
(function-level imports too: a lazy import is still a dependency)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agent", "finetune", "retrieval", "ui", "eval")


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    # A script's `if __name__ == "__main__":` block is an entry point, not a dependency of the module.
    tree.body = [node for node in tree.body if not _is_main_block(node)]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name.split(".")[0] in PACKAGES}


def _is_main_block(node: ast.stmt) -> bool:
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def dotted(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


# (importer prefix, imported prefixes it must not use); the root CLI mounts everything.
RULES = [
    ("finetune", ("agent", "ui", "eval")),
    ("retrieval", ("agent", "ui", "eval")),
    ("agent", ("ui", "eval")),
    ("ui", ("eval",)),
    ("finetune.data", ("finetune.models", "finetune.training", "finetune.cli", "finetune.runs")),
    ("finetune.models", ("finetune.training", "finetune.cli")),
    ("finetune.training", ("finetune.cli",)),
    ("finetune.quantum", ("finetune.data", "finetune.models", "finetune.training", "finetune.cli")),
]
MOUNTS_EVERYTHING = {"agent.cli"}


@pytest.mark.parametrize(("importer", "forbidden"), RULES, ids=[rule[0] for rule in RULES])
def test_imports_go_one_way(importer, forbidden):
    wrong = []
    for path in modules(importer.split(".")[0]):
        name = dotted(path)
        if not (name == importer or name.startswith(importer + ".")) or name in MOUNTS_EVERYTHING:
            continue
        wrong += [f"{name} imports {used}" for used in sorted(imports_of(path))
                  if any(used == f or used.startswith(f + ".") for f in forbidden)]
    assert not wrong, "\n".join(wrong)


def test_no_module_imports_one_that_imports_it_back():
    graph = {dotted(p): imports_of(p) for package in PACKAGES for p in modules(package)}
    circles = sorted(f"{a} <-> {b}" for a, used in graph.items() for b in used
                     if a < b and a in graph.get(b, set()))
    assert not circles, "\n".join(circles)
