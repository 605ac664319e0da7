"""lossaudit: property-based audits of YOLO-style detection losses, component by component.

    >>> import lossaudit
    >>> report = lossaudit.audit(my_loss, lossaudit.GridSpec(classes=3))  # doctest: +SKIP
    >>> print(lossaudit.render_text(report))  # doctest: +SKIP

Importing this package does not import TensorFlow; running an audit does.
"""

from lossaudit.audit import audit
from lossaudit.errors import InvalidArgument, InvalidSpec, LossAuditError, LossError, TargetError
from lossaudit.properties import Outcome, prop
from lossaudit.render import render_json, render_text
from lossaudit.report import Counterexample, Report, Result
from lossaudit.settings import Settings
from lossaudit.spec import Codec, GridSpec, Obj, Scene

#: The one version source: pyproject.toml reads it (``[tool.setuptools.dynamic]``).
__version__ = "0.1.0"

__all__ = [
    "Codec",
    "Counterexample",
    "GridSpec",
    "InvalidArgument",
    "InvalidSpec",
    "LossAuditError",
    "LossError",
    "Obj",
    "Outcome",
    "Report",
    "Result",
    "Scene",
    "Settings",
    "TargetError",
    "audit",
    "prop",
    "render_json",
    "render_text",
]


def __getattr__(name: str) -> object:
    """``lossaudit.keras`` on first use (it needs Keras, so ``import lossaudit`` does not load it)."""
    if name == "keras":
        import importlib

        return importlib.import_module("lossaudit.keras")
    raise AttributeError(f"module 'lossaudit' has no attribute {name!r}")
