"""How the terms of a loss share its total's gradient: fitted weights and gradient shares.

Pure numpy over flattened gradients (on the outputs or on a head's weights); used by
``*.trains`` (a drowned or left-out term), ``*.not_drowned`` and the balance table.
"""

from __future__ import annotations

import numpy as np

from lossaudit.components import base_roles

__all__ = ["contributions", "fitted_weights", "share"]


def fitted_weights(grads: dict[str, np.ndarray], total_given: bool) -> dict[str, float]:
    """Each base component's weight in the total: ``w`` fitted so that ``sum_i w_i g_i`` best
    matches the total's own gradient (a loss is free to weight its terms; a total lossaudit
    summed itself has weight 1 each). Gradients are flattened, over outputs or weights."""
    roles = [r for r in base_roles(grads) if r in grads]
    if not roles or "total" not in grads:
        return {}
    matrix = np.stack([grads[r] for r in roles], axis=1)
    if not total_given or not (np.all(np.isfinite(matrix)) and np.all(np.isfinite(grads["total"]))):
        return dict.fromkeys(roles, 1.0)
    weights, *_ = np.linalg.lstsq(matrix, grads["total"], rcond=None)
    return {r: float(w) for r, w in zip(roles, weights, strict=True)}


def contributions(grads: dict[str, np.ndarray], total_given: bool) -> dict[str, np.ndarray]:
    """Each base component's part of the total's gradient, ``w_i * g_i`` (see
    :func:`fitted_weights`)."""
    return {r: w * grads[r] for r, w in fitted_weights(grads, total_given).items()}


def share(parts: dict[str, np.ndarray], where: np.ndarray | None = None) -> dict[str, float]:
    """Each part's share of the summed gradient norms, restricted to ``where`` when given."""
    norms = {r: float(np.linalg.norm(g if where is None else g[where])) for r, g in parts.items()}
    whole = sum(norms.values())
    return {r: (n / whole if whole > 0 else 0.0) for r, n in norms.items()}
