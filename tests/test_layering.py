"""The pipeline is the layout: a module imports only from earlier stages (plus errors, settings)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lossaudit"

#: Stages in pipeline order; a module may import its own stage and earlier ones.
STAGES = [
    {"errors", "settings", "components", "status", "jsonable"},
    {"spec"},
    {"options"},
    {"strategies", "scenarios"},
    {"adapter", "harness", "calling"},
    {"properties"},
    {"audit", "report", "analysis", "worker", "findings", "counterexamples"},
    {"logs"},
    {"render"},
    {
        "targets",
        "files",
        "config",
        "gate",
        "keras",
        "cli",
        "pytest_plugin",
        "examples",
        "__init__",
        "__main__",
    },
]


def _stage(module: str) -> int:
    top = module.split(".")[0]
    for index, names in enumerate(STAGES):
        if top in names:
            return index
    raise AssertionError(f"lossaudit.{module} is not placed in a stage")


def _modules():
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        yield ".".join(parts), path


@pytest.mark.parametrize(
    "module,path", list(_modules()), ids=lambda v: str(v) if isinstance(v, str) else ""
)
def test_imports_only_earlier_stages(module, path):
    mine = _stage(module)
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        names = []
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("lossaudit.")
        ):
            names = [node.module.removeprefix("lossaudit.")]
        elif isinstance(node, ast.Import):
            names = [
                a.name.removeprefix("lossaudit.")
                for a in node.names
                if a.name.startswith("lossaudit.")
            ]
        for imported in names:
            if mine == _stage("report") and imported.startswith("report"):
                continue
            assert _stage(imported) <= mine, (
                f"lossaudit.{module} imports later stage lossaudit.{imported}"
            )


def test_tensorflow_only_in_the_adapter_and_examples():
    for module, path in _modules():
        if module in ("adapter", "harness", "calling") or module.startswith("examples"):
            continue
        text = path.read_text()
        assert "import tensorflow" not in text, f"lossaudit.{module} imports TensorFlow"
