"""The property registry and the built-in catalogue, grouped by component.

Every property is named ``<component>.<behaviour>`` and documented with what a correct loss does
and which bug class (``BUG-CLASSES.md``) it exposes::

    >>> from lossaudit import properties
    >>> properties.get("coordinates.minimal_at_truth").component
    'coordinates'

Write your own with :func:`prop`; it lands in the same registry and runs in every audit.
"""

import importlib

from lossaudit.properties.registry import (
    COMPONENTS,
    Context,
    NonFinite,
    Outcome,
    Property,
    get,
    listing,
    names,
    prop,
    select,
    unregister,
)

#: The built-in catalogue, in registration order: within a component, results are reported in
#: this order (``trains``, ``not_drowned``, then ``not_saturated``). Importing registers them.
CATALOGUE = (
    "classification",
    "confidence",
    "coordinates",
    "generic",
    "masking",
    "total",
    "degenerate",
    "training",
    "saturation",
)
for _module in CATALOGUE:
    importlib.import_module(f"lossaudit.properties.{_module}")

__all__ = [
    "COMPONENTS",
    "Context",
    "NonFinite",
    "Outcome",
    "Property",
    "get",
    "listing",
    "names",
    "prop",
    "select",
    "unregister",
]
