"""Immutable audit settings with named profiles; the one place that builds ``hypothesis.settings``.

Precedence, highest first: explicit arguments (CLI flags), environment (``LOSSAUDIT_PROFILE``),
``[tool.lossaudit]`` in ``pyproject.toml``, then the profile's defaults. The ``ci`` profile is
picked automatically when a CI environment is detected (the ``CI`` variable, as set by GitHub
Actions, GitLab CI and most others).
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from lossaudit.errors import did_you_mean, invalid

if TYPE_CHECKING:
    import hypothesis

#: How a loss may reduce over the batch: ``auto`` accepts a sum or a mean.
REDUCTIONS = ("auto", "sum", "mean")


@dataclass(frozen=True)
class Settings:
    """How hard and how reproducibly an audit searches.

    - ``max_examples``: Hypothesis examples per property (each costs a few loss calls);
    - ``derandomize``: same examples on every run (no seed needed to reproduce);
    - ``seed``: the random seed when not derandomized; ``None`` draws one and reports it;
    - ``time_limit``: seconds one property may run before the loss is reported as hung;
    - ``reduction``: ``auto`` accepts a batch sum or mean, ``sum`` or ``mean`` demands one;
    - ``shrink``: minimise each counterexample (off: report the first failing example, faster);
    - ``full_shrink``: minimise without a budget. By default shrinking stops once it has taken as
      long as the property's examples would (see :mod:`lossaudit.audit`), and the report says
      when a counterexample is not fully minimised.
    """

    profile: str = "dev"
    max_examples: int = 12
    derandomize: bool = False
    seed: int | None = None
    time_limit: float = 300.0
    reduction: str = "auto"
    shrink: bool = True
    full_shrink: bool = False

    def __post_init__(self) -> None:
        if (
            isinstance(self.max_examples, bool)
            or not isinstance(self.max_examples, int)
            or self.max_examples < 1
        ):
            raise invalid(
                "Settings.max_examples is too small",
                "an int >= 1",
                f"max_examples={self.max_examples!r}",
                "Use at least 1 example per property.",
            )
        if self.reduction not in REDUCTIONS:
            raise invalid(
                "Settings.reduction is unknown",
                " | ".join(REDUCTIONS),
                f"reduction={self.reduction!r}",
                "Declare how the loss reduces over the batch, or leave it on auto.",
            )
        if not (
            isinstance(self.time_limit, int | float)
            and math.isfinite(self.time_limit)
            and self.time_limit > 0
        ):
            raise invalid(
                "Settings.time_limit is not a positive number of seconds",
                "finite seconds > 0",
                f"time_limit={self.time_limit!r}",
                "Give each property a positive time budget.",
            )

    def replace(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def hypothesis_settings(self) -> hypothesis.settings:
        """The ``hypothesis.settings`` this profile implies.

        No example database (an audit writes nothing to the user's tree), no deadline
        (TensorFlow's first call and tracing are slow), shrinking on, quiet output. No explain
        phase: it reruns the minimal example many times over to say which arguments could vary,
        which the report never shows (it was most of the time spent on a failure).
        """
        import hypothesis
        from hypothesis import HealthCheck, Phase, Verbosity

        phases = tuple(
            p for p in Phase if p is not Phase.explain and (self.shrink or p is not Phase.shrink)
        )
        return hypothesis.settings(
            phases=phases,
            max_examples=self.max_examples,
            derandomize=self.derandomize,
            database=None,
            deadline=None,
            verbosity=Verbosity.quiet,
            report_multiple_bugs=False,
            print_blob=False,
            suppress_health_check=list(HealthCheck),
        )


PROFILES: dict[str, Settings] = {
    # Derandomized, so the same commit always gives the same verdicts in CI.
    "ci": Settings(profile="ci", max_examples=15, derandomize=True),
    "dev": Settings(profile="dev", max_examples=25),
    "thorough": Settings(profile="thorough", max_examples=100, time_limit=1800.0, full_shrink=True),
}


def in_ci(environ: Mapping[str, str] | None = None) -> bool:
    """True when the environment looks like a CI runner."""
    env = os.environ if environ is None else environ
    value = env.get("CI", "").strip().lower()
    return value not in ("", "0", "false", "no")


def get_profile(name: str) -> Settings:
    """The named profile, or an :class:`InvalidSpec` listing the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise invalid(
            "unknown settings profile",
            " | ".join(PROFILES),
            f"profile={name!r}",
            "Pick one of the named profiles." + did_you_mean(name, PROFILES),
        ) from None


#: Keys of ``[tool.lossaudit]`` that settings read (other keys belong to other commands).
CONFIG_KEYS: dict[str, type | tuple[type, ...]] = {
    "profile": str,
    "max_examples": int,
    "time_limit": (int, float),
    "reduction": str,
}


def load_config(
    directory: str | os.PathLike[str] | None = None, *, filename: str = "pyproject.toml"
) -> dict[str, Any]:
    """The ``[tool.lossaudit]`` table of ``filename`` in ``directory`` (default: the current
    directory's ``pyproject.toml``), or ``{}`` when there is none. The settings' keys are
    type-checked here; :func:`lossaudit.config.load_project` checks the whole table."""
    import tomllib
    from pathlib import Path

    path = Path(directory or os.getcwd()) / filename
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise invalid(
            f"{path} is not valid TOML",
            "a readable pyproject.toml",
            f"{exc}",
            "Fix the file's syntax or run lossaudit from another directory.",
        ) from None
    table = data.get("tool", {}).get("lossaudit", {})
    if not isinstance(table, dict):
        raise invalid(
            f"[tool.lossaudit] in {path} is not a table",
            "a [tool.lossaudit] table",
            f"{type(table).__name__}",
            "Write it as a TOML table.",
        )
    for key, kind in CONFIG_KEYS.items():
        if key in table and (isinstance(table[key], bool) or not isinstance(table[key], kind)):
            raise invalid(
                f"[tool.lossaudit] {key} in {path} has the wrong type",
                f"{kind.__name__ if isinstance(kind, type) else 'a number'}",
                f"{key} = {table[key]!r}",
                f"Set {key} to a value of that type.",
            )
    return table


def resolve(
    profile: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config: dict[str, Any] | None = None,
    **overrides: Any,
) -> Settings:
    """Build settings by the documented precedence.

    Example:
        >>> resolve("thorough", seed=3).max_examples
        100
    """
    env = os.environ if environ is None else environ
    config = config or {}
    name = (
        profile
        or env.get("LOSSAUDIT_PROFILE")
        or config.get("profile")
        or ("ci" if in_ci(env) else "dev")
    )
    settings = get_profile(name)
    keys = ("max_examples", "time_limit", "reduction")
    from_config: dict[str, Any] = {k: config[k] for k in keys if k in config}
    changes = {**from_config, **{k: v for k, v in overrides.items() if v is not None}}
    return settings.replace(**changes) if changes else settings


@contextlib.contextmanager
def private_hypothesis_home_during() -> Iterator[None]:
    """Hypothesis's cache files in a temporary directory for the block's duration only (the
    pytest plugin: the user's own Hypothesis tests keep their database); a user's own
    HYPOTHESIS_STORAGE_DIRECTORY is respected."""
    if os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        yield
        return
    import shutil

    from hypothesis import configuration

    saved = vars(configuration).get("__hypothesis_home_directory")
    home = tempfile.mkdtemp(prefix="lossaudit-hypothesis-")
    configuration.set_hypothesis_home_dir(home)
    try:
        yield
    finally:
        configuration.set_hypothesis_home_dir(saved)
        shutil.rmtree(home, ignore_errors=True)


def private_hypothesis_home() -> None:
    """Keep Hypothesis's cache files out of the user's directory: an audit writes nothing but
    the report it was asked for. A user's own HYPOTHESIS_STORAGE_DIRECTORY is respected."""
    if os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        return
    import atexit
    import shutil

    from hypothesis.configuration import set_hypothesis_home_dir

    home = tempfile.mkdtemp(prefix="lossaudit-hypothesis-")
    set_hypothesis_home_dir(home)
    atexit.register(shutil.rmtree, home, ignore_errors=True)
