from __future__ import annotations

from lossaudit.settings import PROFILES, in_ci, resolve


def test_ci_is_detected_and_picks_the_derandomized_profile():
    assert in_ci({"CI": "true"}) and not in_ci({}) and not in_ci({"CI": "false"})
    s = resolve(environ={"CI": "true"})
    assert s.profile == "ci" and s.derandomize
    assert s.hypothesis_settings().database is None
    assert s.hypothesis_settings().deadline is None


def test_precedence_flag_then_environment_then_config_then_default():
    env = {"LOSSAUDIT_PROFILE": "thorough"}
    assert resolve("ci", environ=env, config={"profile": "dev"}).profile == "ci"
    assert resolve(None, environ=env, config={"profile": "dev"}).profile == "thorough"
    assert resolve(None, environ={}, config={"profile": "thorough"}).profile == "thorough"
    assert resolve(None, environ={}).profile == "dev"
    assert resolve("dev", environ={}, seed=5, max_examples=None).seed == 5


def test_profiles_are_frozen():
    import dataclasses

    import pytest

    with pytest.raises(dataclasses.FrozenInstanceError):
        PROFILES["ci"].max_examples = 3  # type: ignore[misc]
