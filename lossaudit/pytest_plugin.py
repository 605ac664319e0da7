"""pytest plugin: a loss audit is a line in a test file.

In a test module::

    from lossaudit.pytest_plugin import audit_loss

    yolo_loss = audit_loss("my_pkg/losses.py:yolo_loss", grid="13x9", classes=4, cls="sigmoid")

collects one test item per property, ``test_losses.py::yolo_loss::coordinates.minimal_at_truth``.
A failing property fails its item with the same message ``lossaudit report`` prints; a warning
(the one-class note) is a pytest warning; a property that does not apply is a skip.

``pytest --lossaudit`` also collects every loss configured in ``[tool.lossaudit]``
(``pyproject.toml::<target>::<property>``; such a node id selects one item). Loaded through the
``pytest11`` entry point without importing TensorFlow: the first audited item imports it.

A loss is audited once per session for the selected items, also under xdist: the first worker
to need it audits, the others read its report from the session's temporary directory. An audit
writes nothing into the project (Hypothesis's files go to a temporary directory), and its time
limit holds even for a loss stuck in code that holds the GIL (:mod:`lossaudit.watchdog`).
"""

from __future__ import annotations

import hashlib
import json
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lossaudit.config import LossConfig, Project, load_project
from lossaudit.errors import LossAuditError
from lossaudit.options import LossOptions
from lossaudit.settings import PROFILES, private_hypothesis_home_during, resolve
from lossaudit.spec import Codec, GridSpec
from lossaudit.status import Status

__all__ = ["AuditedLoss", "LossAuditFailure", "LossAuditWarning", "audit_loss"]


_PROJECT = pytest.StashKey[Project]()


def _terminal_stderr() -> int | None:
    """A copy of stderr as the plugin is loaded, before pytest captures file descriptor 2: where
    the watchdog says why it ended a run (a captured stream dies with the process)."""
    import os

    try:
        return os.dup(2)
    except OSError:
        return None


_STDERR = _terminal_stderr()


class LossAuditWarning(UserWarning):
    """A property that warns, such as a classification term that can never train."""


class LossAuditFailure(AssertionError):
    """A property failed, or the loss errored, under pytest."""


@dataclass(frozen=True)
class AuditedLoss:
    """A loss to audit from pytest; build it with :func:`audit_loss`."""

    target: str | Callable[..., Any]
    options: LossOptions = field(default_factory=LossOptions)
    only: tuple[str, ...] = ()

    @property
    def spec(self) -> GridSpec:
        return self.options.spec

    @property
    def codec(self) -> Codec:
        return self.options.codec

    @property
    def components(self) -> Mapping[str, str]:
        return self.options.components

    @property
    def reduction(self) -> str:
        return self.options.reduction


def audit_loss(
    target: str | Callable[..., Any], *, only: Iterable[str] = (), **options: Any
) -> AuditedLoss:
    """Declare a loss for pytest to audit; assign the result to a module-level name.

    ``target`` is ``"path/to/file.py:name"``, ``"package.module:name"`` or the loss itself. The
    keywords are ``lossaudit report``'s loss options (:data:`lossaudit.options.OPTIONS`), the
    flags spelt with underscores (``anchor_sizes`` for ``--anchor-sizes``; ``components`` for
    ``--component``), in the forms ``[[tool.lossaudit.losses]]`` takes too (``grid="13x9"``,
    ``anchor_sizes=["0.1,0.1"]``, ``components=["xy_loss=coordinates"]``) or as Python values
    (``grid=(13, 9)``, ``anchor_sizes=[(0.1, 0.1)]``, ``components={"xy_loss": "coordinates"}``);
    ``None`` keeps the default. ``only`` limits the properties collected.

    Example:
        >>> yolo_loss = audit_loss("my_pkg.losses:yolo_loss", grid="13x9", classes=4)
    """
    return AuditedLoss(target, LossOptions.from_keywords(options), tuple(only))


def _from_config(loss: LossConfig) -> AuditedLoss:
    return AuditedLoss(loss.target, loss.options)


def _project(config: pytest.Config) -> Project:
    """``[tool.lossaudit]`` of the root directory, read and checked once per session."""
    if _PROJECT not in config.stash:
        config.stash[_PROJECT] = load_project(config.rootpath)
    return config.stash[_PROJECT]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lossaudit", "lossaudit: property-based audits of YOLO losses")
    group.addoption(
        "--lossaudit",
        action="store_true",
        help="also collect the losses configured in [tool.lossaudit] of pyproject.toml",
    )
    group.addoption(
        "--lossaudit-profile",
        choices=tuple(PROFILES),
        help="settings profile for audits (default: ci under CI, else dev with a fixed seed)",
    )
    group.addoption("--lossaudit-seed", type=int, help="seed for non-derandomized profiles")
    group.addoption("--lossaudit-max-examples", type=int, help="Hypothesis examples per property")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lossaudit: a property of a loss audited by lossaudit")
    examples = config.getoption("lossaudit_max_examples")
    if examples is not None and examples < 1:
        raise pytest.UsageError(
            "lossaudit: --lossaudit-max-examples: expected an int >= 1 (Hypothesis examples "
            f"per property); received {examples}. Use at least 1."
        )
    if config.getoption("lossaudit"):
        path = config.rootpath / "pyproject.toml"
        if not path.is_file():
            raise pytest.UsageError(
                f"lossaudit: --lossaudit needs a pyproject.toml with [[tool.lossaudit.losses]] in "
                f"{config.rootpath}; none found. Add one, or drop --lossaudit."
            )
        try:
            _project(config)
        except LossAuditError as exc:
            raise pytest.UsageError(f"lossaudit: {exc}") from None
        # Collected like a test file, so counts, -k and xdist treat its losses as any other item;
        # unless named already (``pyproject.toml::<target>::<property>`` selects one item).
        named = {(config.invocation_params.dir / a.split("::")[0]).resolve() for a in config.args}
        if path.resolve() not in named:
            config.args.append(str(path))


def _settings(config: pytest.Config, target: str) -> Any:
    """Settings for one loss. A random profile gets a seed from the options or from the target
    name, so every xdist worker (and every rerun) draws the same examples."""
    seed = config.getoption("lossaudit_seed")
    if seed is None:
        hyp_seed = config.getoption("hypothesis_seed", default=None)
        seed = int(hyp_seed) if hyp_seed not in (None, "") and str(hyp_seed).isdigit() else None
    settings = resolve(
        config.getoption("lossaudit_profile"),
        config=_project(config).table,
        max_examples=config.getoption("lossaudit_max_examples"),
    )
    if not settings.derandomize:
        settings = settings.replace(
            seed=seed if seed is not None else zlib.crc32(target.encode()) % 2**31
        )
    return settings


class LossCollector(pytest.Collector):
    """One audited loss: its children are its properties."""

    def __init__(self, *, audited: AuditedLoss, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.audited = audited
        self._report: Any = None
        self._ran: tuple[str, ...] = ()

    def collect(self) -> Iterator[PropertyItem]:
        from lossaudit import properties

        on = self.audited.options.opt_in
        # An opt-in property whose option is off is not collected (named in only, it is,
        # and skips saying how to switch it on).
        names = self.audited.only or [
            n for n in properties.names() if properties.get(n).opt_in in ("", *on)
        ]
        for name in names:
            properties.get(name)
            yield PropertyItem.from_parent(self, name=name)

    def report_for(self, name: str) -> Any:
        """The audit's report, run once for every selected property of this loss."""
        if self._report is None or name not in self._ran:
            selected = [i.name for i in self.session.items if i.parent is self] or [name]
            self._report = _shared(self, selected)
            self._ran = tuple(selected)
        return self._report

    def _audit(self, only: list[str]) -> Any:
        from lossaudit.audit import audit
        from lossaudit.targets import load_target

        target = self.audited.target
        if isinstance(target, str):
            loss, label = load_target(target, factory=self.audited.options.factory)
        else:
            loss, label = target, f"{self.path.name}:{self.name}"
        settings = _settings(self.config, label).replace(reduction=self.audited.reduction)
        if not self.config.getini("faulthandler_timeout"):  # pytest's own timer: leave it be
            from lossaudit import watchdog

            watchdog.arm_exit_fallback(_STDERR)
        with private_hypothesis_home_during():
            return audit(
                loss,
                self.audited.spec,
                self.audited.codec,
                settings=settings,
                components=self.audited.components,
                only=only,
                target=label,
                **self.audited.options.calling(),
            )


def _shared(collector: LossCollector, only: list[str]) -> Any:
    """``collector``'s audit of ``only``, once per session: under xdist the first worker to ask
    audits, behind a lock, and leaves the report in the session's temporary directory for the
    others (a worker that asks meanwhile waits for it)."""
    config = collector.config
    factory = getattr(config, "_tmp_path_factory", None)
    try:
        import fcntl
    except ImportError:  # no POSIX locks: each worker audits for itself
        fcntl = None  # type: ignore[assignment]
    if not hasattr(config, "workerinput") or factory is None or fcntl is None:
        return collector._audit(only)
    from lossaudit.files import write_atomic
    from lossaudit.report import Report

    shared = factory.getbasetemp().parent / "lossaudit-plugin-audits"
    shared.mkdir(exist_ok=True)
    key = hashlib.blake2b(f"{collector.nodeid}\0{' '.join(only)}".encode(), digest_size=12)
    path = shared / f"{key.hexdigest()}.json"
    with open(shared / f"{key.hexdigest()}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.is_file():
            return Report.from_dict(json.loads(path.read_text(encoding="utf-8")))
        report = collector._audit(only)
        write_atomic(path, report.to_json())
        return report


class PropertyItem(pytest.Item):
    """One property of one loss."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_marker("lossaudit")

    def runtest(self) -> None:
        from lossaudit.render import render_result

        parent = self.parent
        assert isinstance(parent, LossCollector)
        try:
            report = parent.report_for(self.name)
        except LossAuditError as exc:
            raise LossAuditFailure(f"lossaudit could not audit {parent.name}: {exc}") from None
        result = next((r for r in report.results if r.property == self.name), None)
        if result is None:
            # The whole loss failed before any property ran (it cannot be evaluated at all).
            result = report.results[0]
        if result.status is Status.SKIP:
            pytest.skip(result.message)
        if result.status is Status.WARN:
            warnings.warn(LossAuditWarning(render_result(result)), stacklevel=1)
            return
        if result.status in (Status.FAIL, Status.ERROR):
            raise LossAuditFailure(render_result(result))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        # Not "loss::property": pytest would turn the property's dot into "::" in -v output,
        # printing an id that cannot be pasted back; this headline leaves the node id alone.
        return self.path, None, f"{self.parent.name}: {self.name}"  # type: ignore[union-attr]

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, LossAuditFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)  # type: ignore[arg-type]


def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> Any:
    if isinstance(obj, AuditedLoss):
        return LossCollector.from_parent(collector, name=name, audited=obj)
    return None


class ConfiguredLosses(pytest.File):
    """``pyproject.toml`` as a collector of the losses its ``[tool.lossaudit]`` configures."""

    def collect(self) -> Iterator[LossCollector]:
        for loss in _project(self.config).losses:
            yield LossCollector.from_parent(self, name=loss.target, audited=_from_config(loss))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    config = parent.config
    if config.getoption("lossaudit") and file_path == config.rootpath / "pyproject.toml":
        return ConfiguredLosses.from_parent(parent, path=file_path)
    return None
