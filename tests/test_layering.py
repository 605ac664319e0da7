"""The pipeline is the layout: a module imports only from its own stage and earlier ones.

``STAGE`` places every module of the package in a stage (``STAGES`` gives their order, as in
STYLE.md); adding a module is one line there. A package's submodules take the package's stage
(``lossaudit.render.html`` is ``render``). Every import form counts, wherever it sits (inside a
function or under ``TYPE_CHECKING`` too): ``import lossaudit.x``, ``from lossaudit.x import y``,
``from lossaudit import x``, relative imports and ``importlib.import_module("lossaudit.x")``.
A name imported from the package itself that is not a submodule (``from lossaudit import Report``)
is an import of ``lossaudit/__init__.py``, a front end.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lossaudit"

#: Stages in pipeline order.
STAGES = (
    "base",  # importable by every module: errors, settings and the shared vocabularies
    "spec",
    "generation",
    "adapter",  # the only TensorFlow seam
    "properties",
    "audit",
    "logs",  # TensorBoard logs read and diagnosed (data and rules the renderers draw)
    "render",
    "front end",  # calls in; nothing calls back
)

#: Every module's stage. Entries may name modules that do not exist (yet): they are placed
#: before they land, so the test holds the moment they do.
STAGE = {
    "errors": "base",
    "settings": "base",
    "components": "base",  # the one role vocabulary
    "references": "base",  # importing what a module:name string names
    "status": "base",  # typed statuses
    "jsonable": "base",  # the one JSON policy
    "watchdog": "base",  # what a running audit tells its supervisor (steps and their limits)
    "spec": "spec",
    "strategies": "generation",
    "scenarios": "generation",
    "layouts": "generation",  # calling conventions: scenes to a loss's own arguments
    "parsers": "generation",  # option values read from text, TOML or Python
    "options": "generation",  # the one loss-options schema (layouts' options included)
    "adapter": "adapter",
    "harness": "adapter",  # the Keras/TensorFlow training harness
    "calling": "adapter",  # calling a loss: quiet TensorFlow, errors, summaries, returns
    "legacy": "adapter",  # the TF1 / Keras 2 bridge for old loss code
    "properties": "properties",
    "audit": "audit",
    "report": "audit",
    "analysis": "audit",
    "worker": "audit",  # the audit's thread pool
    "findings": "audit",  # the analysis beside the verdicts, as typed data
    "counterexamples": "audit",
    "render": "render",
    "targets": "front end",
    "config": "front end",
    "gate": "front end",
    "logs": "logs",
    "files": "front end",  # atomic writes of every output
    "supervisor": "front end",  # runs a command in a child process and stops it when it hangs
    "keras": "front end",
    "cli": "front end",
    "pytest_plugin": "front end",
    "examples": "front end",
    "__init__": "front end",
    "__main__": "front end",
}

#: Only these modules (and their submodules) may import TensorFlow or Keras, and only inside
#: functions: importing them (as ``import lossaudit`` does the adapter) must stay light...
TENSORFLOW_ALLOWED = {"adapter", "harness", "calling", "keras", "examples", "layouts", "legacy"}
#: ... where the example losses (user code, run as a user would write it) may do so at the top.
TENSORFLOW_AT_TOP_LEVEL = {"examples"}
#: Keras 3 imports its TensorFlow backend, so importing it is importing TensorFlow.
HEAVY = {"tensorflow", "keras", "tf_keras"}


def _rank(module: str) -> int:
    top = module.split(".")[0]
    assert top in STAGE, (
        f"lossaudit.{module} is not placed in a stage: add {top!r} to STAGE in {__file__}"
    )
    return STAGES.index(STAGE[top])


def _modules() -> Iterator[tuple[str, Path]]:
    """``(dotted name inside the package, path)`` for every module; ``__init__`` for the root."""
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        yield ".".join(parts), path


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _submodule_exists(dotted: str) -> bool:
    target = PACKAGE.joinpath(*dotted.split("."))
    return target.with_suffix(".py").is_file() or (target / "__init__.py").is_file()


def _inside(absolute: str) -> str | None:
    """``lossaudit.x.y`` -> ``x.y``; ``lossaudit`` -> ``__init__``; anything else -> None."""
    if absolute == "lossaudit":
        return "__init__"
    if absolute.startswith("lossaudit."):
        return absolute.removeprefix("lossaudit.")
    return None


def _from_package(base: str, names: list[str]) -> list[str]:
    """``from <base> import a, b``: each name is a submodule when one exists (or is placed in
    STAGE, for the root), else an attribute of ``base`` itself."""
    found = []
    for name in names:
        dotted = f"{base}.{name}" if base != "__init__" else name
        if _submodule_exists(dotted) or (base == "__init__" and name in STAGE):
            found.append(dotted)
        else:
            found.append(base)
    return found


def imported_modules(module: str, path: Path, tree: ast.AST) -> Iterator[tuple[int, str]]:
    """``(line, module inside the package)`` for every import of lossaudit in ``tree``."""
    parts = module.split(".") if module != "__init__" else []
    package = parts if _is_package(path) else parts[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                inside = _inside(alias.name)
                if inside is not None:
                    yield node.lineno, inside
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                up = node.level - 1
                assert up <= len(package), f"lossaudit.{module}:{node.lineno} leaves the package"
                parts = package[: len(package) - up] + (node.module or "").split(".")
                absolute = ".".join(["lossaudit", *[p for p in parts if p]])
            else:
                absolute = node.module or ""
            inside = _inside(absolute)
            if inside is not None:
                for name in _from_package(inside, [a.name for a in node.names if a.name != "*"]):
                    yield node.lineno, name
        elif isinstance(node, ast.Call):
            inside = _inside(_dynamic_import(node) or "")
            if inside is not None:
                yield node.lineno, inside


def _dynamic_import(node: ast.Call) -> str | None:
    """The module named by ``importlib.import_module("...")`` or ``__import__("...")``."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name not in ("import_module", "__import__") or not node.args:
        return None
    first = node.args[0]
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None


def _top_level_names(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Every absolute module name imported anywhere in ``tree`` (for third-party checks)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            yield node.lineno, node.module
        elif isinstance(node, ast.Call) and (name := _dynamic_import(node)) is not None:
            yield node.lineno, name


MODULES = list(_modules())


@pytest.mark.parametrize("module,path", MODULES, ids=[m for m, _ in MODULES])
def test_imports_only_its_own_and_earlier_stages(module, path):
    mine = _rank(module)
    tree = ast.parse(path.read_text(), str(path))
    for line, imported in imported_modules(module, path, tree):
        assert _rank(imported) <= mine, (
            f"lossaudit.{module} (stage {STAGES[mine]!r}) imports lossaudit.{imported} "
            f"(later stage {STAGES[_rank(imported)]!r}) at {path.name}:{line}"
        )


@pytest.mark.parametrize("module,path", MODULES, ids=[m for m, _ in MODULES])
def test_tensorflow_only_behind_its_seam(module, path):
    tree = ast.parse(path.read_text(), str(path))
    top = module.split(".")[0]
    if top in TENSORFLOW_AT_TOP_LEVEL:
        return
    allowed = top in TENSORFLOW_ALLOWED
    names = _executed_on_import(tree) if allowed else _top_level_names(tree)
    for line, name in names:
        assert name.split(".")[0] not in HEAVY, (
            f"lossaudit.{module} imports {name} at {path.name}:{line}"
            + (
                " when it is imported: import it inside the functions that need it"
                if allowed
                else f"; only {', '.join(sorted(TENSORFLOW_ALLOWED))} may "
                "(call lossaudit.adapter.import_tensorflow)"
            )
        )


def _executed_on_import(node: ast.AST) -> Iterator[tuple[int, str]]:
    """Imports that run when the module is imported: not inside a function, nor under
    ``if TYPE_CHECKING:`` (its ``else`` branch does run)."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        return
    if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
        for child in node.orelse:
            yield from _executed_on_import(child)
        return
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield from _top_level_names(node)
        return
    if isinstance(node, ast.Call) and (name := _dynamic_import(node)) is not None:
        yield node.lineno, name
    for child in ast.iter_child_nodes(node):
        yield from _executed_on_import(child)


def test_every_module_is_placed_once_and_stages_are_known():
    assert set(STAGE.values()) <= set(STAGES)
    assert {m.split(".")[0] for m, _ in MODULES} <= set(STAGE)


# The checker checks itself on every form it claims to see, so a parsing slip cannot make the
# layering test pass vacuously.
@pytest.mark.parametrize(
    "module,filename,source,expected",
    [
        ("spec", "spec.py", "import lossaudit.audit", ["audit"]),
        ("spec", "spec.py", "import lossaudit.render.html as h", ["render.html"]),
        ("spec", "spec.py", "import lossaudit", ["__init__"]),
        ("spec", "spec.py", "from lossaudit.audit import audit", ["audit"]),
        ("spec", "spec.py", "from lossaudit import report, errors", ["report", "errors"]),
        ("spec", "spec.py", "from lossaudit import Report", ["__init__"]),
        ("spec", "spec.py", "from lossaudit import worker", ["worker"]),  # placed, not yet here
        ("spec", "spec.py", "from lossaudit.render import html", ["render.html"]),
        ("spec", "spec.py", "from lossaudit.render import render", ["render"]),
        ("spec", "spec.py", "from . import audit", ["audit"]),
        ("spec", "spec.py", "from .report import Report", ["report"]),
        ("render.text", "render/text.py", "from . import html", ["render.html"]),
        ("render.text", "render/text.py", "from ._common import x", ["render._common"]),
        ("render.text", "render/text.py", "from ..report import Report", ["report"]),
        ("render.text", "render/text.py", "from .. import cli", ["cli"]),
        ("render", "render/__init__.py", "from .html import render_html", ["render.html"]),
        ("render", "render/__init__.py", "from ..audit import audit", ["audit"]),
        ("__init__", "__init__.py", "from .audit import audit", ["audit"]),
        ("spec", "spec.py", "def f():\n    from lossaudit import cli", ["cli"]),
        ("spec", "spec.py", "import importlib\nimportlib.import_module('lossaudit.cli')", ["cli"]),
        ("spec", "spec.py", "import numpy\nfrom hypothesis import strategies", []),
    ],
)
def test_the_checker_sees_every_import_form(module, filename, source, expected):
    path = PACKAGE / filename
    found = [name for _, name in imported_modules(module, path, ast.parse(source))]
    assert found == expected


@pytest.mark.parametrize(
    "source",
    [
        "import tensorflow",
        "import tensorflow as tf",
        "from tensorflow import keras",
        "from tensorflow.python.ops import math_ops",
        "import keras",
        "def f():\n    import tensorflow as tf",
        "import importlib\nimportlib.import_module('tensorflow')",
    ],
)
def test_the_tensorflow_check_sees_every_import_form(source):
    names = [n.split(".")[0] for _, n in _top_level_names(ast.parse(source))]
    assert HEAVY & set(names)


@pytest.mark.parametrize(
    "source,runs",
    [
        ("import tensorflow as tf", True),
        ("try:\n    import keras\nexcept ImportError:\n    pass", True),
        ("class A:\n    import tensorflow", True),
        ("def f():\n    import tensorflow as tf", False),
        ("class A:\n    def f(self):\n        from tensorflow import keras", False),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import tensorflow", False),
        ("if TYPE_CHECKING:\n    pass\nelse:\n    import tensorflow", True),
        ("x = [importlib.import_module('keras')]", True),
        ("f = lambda: importlib.import_module('keras')", False),
    ],
)
def test_the_seam_check_sees_imports_that_run_on_import(source, runs):
    names = [n for _, n in _executed_on_import(ast.parse(source))]
    assert (bool(HEAVY & {n.split(".")[0] for n in names})) is runs
