"""The property registry and the built-in catalogue, grouped by component.

Every property is named ``<component>.<behaviour>`` and documented with what a correct loss does
and which bug class (``BUG-CLASSES.md``) it exposes::

    >>> from lossaudit import properties
    >>> properties.get("coordinates.minimal_at_truth").component
    'coordinates'

Write your own with :func:`prop`; it lands in the same registry and runs in every audit.
"""

from lossaudit.properties import (  # noqa: F401  (importing registers the built-in catalogue)
    classification,
    confidence,
    coordinates,
    generic,
    masking,
    total,
    training,
)
from lossaudit.properties.registry import (
    COMPONENTS,
    Context,
    NonFinite,
    Outcome,
    Property,
    get,
    names,
    prop,
    select,
    unregister,
)

__all__ = [
    "COMPONENTS",
    "Context",
    "NonFinite",
    "Outcome",
    "Property",
    "get",
    "names",
    "prop",
    "select",
    "unregister",
]
