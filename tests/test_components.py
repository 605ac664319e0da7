"""The one vocabulary of components: names to roles, mapping validation, grouping."""

from __future__ import annotations

import pytest

from lossaudit.components import (
    BASE_ROLES,
    COMPONENTS,
    MAPPABLE,
    RETURNED,
    base_roles,
    check_mapping,
    group,
    order_key,
    role_for_name,
)
from lossaudit.errors import InvalidArgument


@pytest.mark.parametrize(
    "name,role",
    [
        ("coordinates", "coordinates"),
        ("xy_loss", "coordinates"),
        ("wh_loss", "coordinates"),
        ("giou_loss", "coordinates"),
        ("box", "coordinates"),
        ("noobj_loss", "no_objects"),
        ("no_objects_loss_sum", "no_objects"),
        ("objects_loss_sum", "objects"),
        ("obj", "objects"),
        ("confidence_loss", "confidence"),
        ("conf", "confidence"),
        ("class_loss", "classification"),
        ("prob_loss", "classification"),
        ("cls", "classification"),
        ("total_loss", "total"),
        ("loss/xy", "coordinates"),
        ("learning_rate", None),
    ],
)
def test_name_heuristic(name, role):
    assert role_for_name(name) == role


def test_explicit_mapping_wins():
    assert role_for_name("obj_loss", {"obj_loss": "confidence"}) == "confidence"


def test_roles_are_ordered_base_first():
    assert COMPONENTS[: len(BASE_ROLES)] == BASE_ROLES
    assert MAPPABLE == (*COMPONENTS, "ignore")
    assert sorted(["total", "no_objects", "coordinates"], key=order_key) == [
        "coordinates",
        "no_objects",
        "total",
    ]


@pytest.mark.parametrize(
    "roles,base",
    [
        (["coordinates", "objects", "no_objects", "classification"], list(BASE_ROLES)),
        (["coordinates", "confidence", "total"], ["coordinates", "confidence"]),
        (["objects", "no_objects", "confidence"], ["objects", "no_objects"]),
    ],
)
def test_base_roles_let_confidence_stand_in(roles, base):
    assert base_roles(roles) == base


@pytest.mark.parametrize(
    "mapping", [{"xy": "coordinates", "lr": "ignore"}, ["xy=coordinates", "lr=ignore"]]
)
def test_check_mapping_accepts_a_dict_or_name_role_strings(mapping):
    assert check_mapping(mapping) == {"xy": "coordinates", "lr": "ignore"}


@pytest.mark.parametrize(
    "mapping,said",
    [
        ({"xy": "coordinate"}, "Did you mean 'coordinates'"),
        ({"xy": 3}, "unknown role"),
        ("xy=coordinates", "not a mapping"),
        ({"": "total"}, "unknown role"),
    ],
)
def test_check_mapping_rejects_with_one_message(mapping, said):
    with pytest.raises(InvalidArgument, match=said):
        check_mapping(mapping, source="--component")


def test_group_sums_names_by_role_and_keeps_the_returned_total():
    g = group(
        {"xy": 1, "wh": 2, "total_loss": 9, "lr": 0.1, "step": 3, RETURNED: 5},
        {"step": "ignore"},
    )
    assert g.parts == {"coordinates": [("xy", 1), ("wh", 2)], "total": [(RETURNED, 5)]}
    assert g.unmapped == {"lr": 0.1}
    assert g.total_given and g.roles == ("coordinates", "total")


def test_group_without_a_total():
    g = group({"noobj": 1, "obj": 2})
    assert not g.total_given
    assert g.roles == ("objects", "no_objects")
    assert g.names == {"no_objects": ("noobj",), "objects": ("obj",)}
