"""An audit and ``lossaudit.keras`` agree on every component of every fixture loss.

Both read a loss's components through :mod:`lossaudit.components`; this checks it end to end:
the adapter's value of each role and the Keras metric of the same name, on the same batch.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fixtures.catalog import ALL
from lossaudit import errors
from lossaudit.components import BASE_ROLES
from lossaudit.scenarios import noisy
from lossaudit.spec import Codec, GridSpec, Obj, Scene
from lossaudit.targets import load_target

SPEC = GridSpec(batch=2, H=3, W=4, anchors=2, classes=2)  # the default grid
OBJECTS = (Obj(0, 1, 2, 1, 0.4, 0.6, 0.3, 0.2, 1), Obj(1, 0, 0, 0, 0.5, 0.5, 0.6, 0.4, 0))


#: Stateful losses (``total.pure``) give another value on every call: nothing to agree on.
PURE = [f for f in ALL if "total.pure" not in (f.catches, *f.also)]


@pytest.mark.slow
@pytest.mark.parametrize("fixture", PURE, ids=lambda f: f.name)
def test_audit_and_keras_metrics_agree(fixture):
    from lossaudit.adapter import Adapter
    from lossaudit.keras import component_metrics, total_of

    loss, _ = load_target(fixture.target)
    spec = SPEC.replace(classes=fixture.classes)
    objects = tuple(dataclasses.replace(o, cls=o.cls % spec.classes) for o in OBJECTS)
    case = noisy(Scene(spec, objects), Codec(**fixture.codec), seed=3)
    y_true = case.y_true()
    evaluation = Adapter(loss).evaluate(case, mode="eager")
    try:
        metrics = component_metrics(loss, shape=spec.shape[1:])
    except errors.InvalidArgument as exc:
        # A loss that reports only a total has no component metrics: then it is all there is.
        assert "reports no components" in str(exc)
        assert [r for r in evaluation.values if r != "total"] == []
    else:
        seen = {}
        for metric in metrics:
            metric.update_state(y_true, case.y_pred)
            seen[metric.name] = float(metric.result())
        audited = {r: v for r, v in evaluation.values.items() if r != "total"}
        assert set(seen) == set(audited)
        np.testing.assert_allclose([seen[r] for r in audited], list(audited.values()), rtol=1e-5)
    total = float(np.mean(total_of(loss)(y_true, case.y_pred)))
    np.testing.assert_allclose(total, evaluation.values["total"], rtol=1e-5, atol=1e-7)
    assert set(evaluation.values) - {"total", "confidence"} <= set(BASE_ROLES)
