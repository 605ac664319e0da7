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


def test_pyproject_table_is_read_and_checked(tmp_path):
    import pytest

    from lossaudit.errors import InvalidSpec
    from lossaudit.settings import load_config

    assert load_config(tmp_path) == {}
    (tmp_path / "pyproject.toml").write_text(
        '[tool.lossaudit]\nprofile = "thorough"\nmax_examples = 7\n'
    )
    config = load_config(tmp_path)
    s = resolve(None, environ={}, config=config)
    assert (s.profile, s.max_examples) == ("thorough", 7)
    assert resolve(None, environ={}, config=config, max_examples=3).max_examples == 3
    (tmp_path / "pyproject.toml").write_text("[tool.lossaudit]\nmax_examples = 'many'\n")
    with pytest.raises(InvalidSpec, match="max_examples = 'many'"):
        load_config(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.lossaudit\n")
    with pytest.raises(InvalidSpec, match="not valid TOML"):
        load_config(tmp_path)


def test_hypothesis_runs_no_explain_phase_and_shrinks_unless_told_not_to():
    from hypothesis import Phase

    phases = resolve("ci").hypothesis_settings().phases
    assert Phase.explain not in phases and Phase.shrink in phases
    assert Phase.shrink not in resolve("ci", shrink=False).hypothesis_settings().phases
    assert PROFILES["thorough"].full_shrink and not PROFILES["ci"].full_shrink
