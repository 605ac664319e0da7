"""The ``lossaudit`` command line: ``lossaudit report [TARGET] [options]``.

``--help`` and argument errors never import TensorFlow; only running an audit does.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from lossaudit import watchdog
from lossaudit.errors import LossAuditError, UsageError, did_you_mean
from lossaudit.files import check_writable, report_stream, write_atomic, write_or_explain
from lossaudit.options import LossOptions, add_arguments
from lossaudit.settings import private_hypothesis_home

if TYPE_CHECKING:
    from lossaudit.settings import Settings


class ExitCode(enum.IntEnum):
    """What ``lossaudit`` returns to the shell."""

    #: Every property that applies held (warnings allowed).
    OK = 0
    #: A property failed or the loss raised, hung or returned something unusable.
    FAILED = 1
    #: The command was used wrongly: bad option, missing file, unknown name.
    USAGE = 2
    #: lossaudit itself broke; the message asks for a bug report.
    INTERNAL = 3
    #: Stopped by Ctrl-C (KeyboardInterrupt): 128 + SIGINT, the shell's convention, so scripts
    #: and CI tell a user's interruption from a verdict. No output file is left half-written.
    INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        hint = ""
        if "invalid choice:" in message:
            bad = message.split("invalid choice:", 1)[1].split("(", 1)[0].strip().strip("'\"")
            choices = message.split("choose from", 1)[-1]
            names = [c.strip(" ')\"") for c in choices.split(",")]
            hint = did_you_mean(bad, names)
        self.exit(
            ExitCode.USAGE,
            f"lossaudit: error: {message}.{hint}\nRun '{self.prog} --help' for the options.\n",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lossaudit",
        description="Audit a YOLO-style detection loss, component by component.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    _add_report(sub)
    _add_gate(sub)
    _add_tensorboard(sub)
    return parser


def _add_report(sub: Any) -> None:
    rep = sub.add_parser(
        "report",
        help="audit a loss and print a report",
        description=(
            "Audit a loss with property-based tests and report a verdict per component. "
            "Exit code 0: nothing failed; 1: a property failed or the loss errored; 2: usage error."
        ),
    )
    rep.add_argument(
        "target",
        nargs="?",
        help="path/to/file.py:name or package.module:name (a function, a Keras Loss instance or class); "
        "default: the bundled seed loss",
    )
    add_arguments(rep)
    s = rep.add_argument_group("search")
    s.add_argument(
        "--profile",
        choices=("ci", "dev", "thorough"),
        help="settings profile (default: ci under CI, else dev)",
    )
    s.add_argument("--seed", type=int, help="random seed, to reproduce a dev-profile run")
    s.add_argument("--max-examples", type=int, metavar="N", help="Hypothesis examples per property")
    s.add_argument(
        "--time-limit",
        type=float,
        metavar="SECONDS",
        help="seconds one property may take (default 300)",
    )
    s.add_argument(
        "--only", action="append", metavar="PROPERTY", help="run only this property; repeatable"
    )
    s.add_argument(
        "--no-shrink",
        dest="shrink",
        action="store_false",
        help="report the first failing example without minimising it (faster)",
    )
    s.add_argument(
        "--full-shrink",
        action="store_true",
        help="minimise counterexamples fully; by default shrinking stops after as many "
        "attempts, or as long, as the property's examples (the report says so)",
    )
    o = rep.add_argument_group("output")
    o.add_argument(
        "--format",
        choices=("text", "json", "markdown", "junit", "html"),
        default="text",
        help="report format (default text; html is one self-contained page with pictures)",
    )
    o.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="write the report to FILE (atomically) instead of stdout",
    )
    o.add_argument("--verbose", action="store_true", help="list every property in the text report")
    o.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the text report",
    )
    o.add_argument("--list", action="store_true", help="list the registered properties and exit")
    o.add_argument(
        "--logs",
        type=Path,
        metavar="LOGDIR",
        help="also diagnose these TensorBoard logs (as `lossaudit tensorboard`) and include them "
        "in the report (a plot in html, a table in text and markdown)",
    )


def _add_gate(sub: Any) -> None:
    chk = sub.add_parser(
        "check",
        help="the CI gate: audit every configured loss and compare with the baseline",
        description=(
            "Audit every loss configured in [tool.lossaudit] and compare each component's values "
            "on canonical scenes with the baseline. Exit 0: every property holds and nothing "
            "drifted; 1: a property failed, a loss errored or a value drifted; 2: bad configuration."
        ),
    )
    chk.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="TOML file with [tool.lossaudit] (default ./pyproject.toml)",
    )
    chk.add_argument("--profile", choices=("ci", "dev", "thorough"), help="settings profile")
    chk.add_argument("--format", choices=("text", "markdown"), default="text", help="output format")
    chk.add_argument(
        "--out", type=Path, metavar="FILE", help="also write the output to FILE (atomically)"
    )
    chk.add_argument(
        "--html",
        type=Path,
        metavar="FILE",
        help="also write an HTML page (drift table and every loss's report) to FILE (atomically)",
    )

    base = sub.add_parser(
        "baseline",
        help="record every configured loss's component values on canonical scenes",
        description="Write the baseline file `lossaudit check` compares against (review and commit it).",
    )
    base.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="TOML file with [tool.lossaudit] (default ./pyproject.toml)",
    )
    base.add_argument(
        "--update", action="store_true", help="overwrite an existing baseline (accept the change)"
    )


def _add_tensorboard(sub: Any) -> None:
    tb = sub.add_parser(
        "tensorboard",
        help="diagnose the loss components a training run logged to TensorBoard",
        description=(
            "Read the TensorBoard event files under LOGDIR (runs are subdirectories), find the "
            "loss components among the scalar tags and say whether each responds to training: "
            "responding, flat, zero, diverging, nan or drowned. Exit code 0: every component "
            "responds; 1: one does not; 2: usage error (bad LOGDIR, no event files, no loss tags)."
        ),
    )
    tb.add_argument("logdir", type=Path, metavar="LOGDIR", help="the log_dir training wrote to")
    tb.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format (default text)"
    )
    tb.add_argument(
        "--out", type=Path, metavar="FILE", help="write the output to FILE (atomically)"
    )
    tb.add_argument(
        "--plot", type=Path, metavar="FILE.png", help="also draw the curves to a PNG file"
    )
    tb.add_argument(
        "--component",
        action="append",
        default=[],
        metavar="TAG=ROLE",
        help="map a tag to a role (coordinates, objects, no_objects, classification, "
        "confidence, total, ignore); repeatable",
    )


def _progress(stream: TextIO) -> Callable[[int, int, str], None]:
    """A one-line progress display for a terminal: which property runs, how many remain, time."""
    import time

    started = time.monotonic()

    def show(index: int, total: int, name: str) -> None:
        elapsed = time.monotonic() - started
        if index >= total:
            line = f"{total}/{total} properties done; {name} ({elapsed:.0f}s)"
        else:
            line = f"[{index + 1}/{total}] {name}; {total - index - 1} remaining ({elapsed:.0f}s)"
        stream.write(f"\r\x1b[2K{line}")
        stream.flush()

    return show


def _report_settings(args: argparse.Namespace, options: LossOptions) -> Settings:
    """The search flags over ``[tool.lossaudit]`` (checked whole, as ``check`` checks it)."""
    from lossaudit.config import load_project
    from lossaudit.settings import resolve

    return resolve(
        args.profile,
        config=load_project().table,
        seed=args.seed,
        max_examples=args.max_examples,
        time_limit=args.time_limit,
        # Given, --reduction (checked by from_cli) overrides [tool.lossaudit] reduction.
        reduction=None if args.reduction is None else options.reduction,
        shrink=None if args.shrink else False,
        full_shrink=True if args.full_shrink else None,
    )


def _load(target: str | None, limit: float, *, factory: bool = False) -> tuple[Any, str]:
    """The target loaded under the watchdog: an import that hangs is stopped at its limit."""
    from lossaudit.targets import DEFAULT_TARGET, load_target

    with watchdog.step(f"importing {target or DEFAULT_TARGET}", limit):
        return load_target(target, factory=factory)


def _report(args: argparse.Namespace, out: TextIO) -> ExitCode:
    if args.list:
        from lossaudit import properties

        out.write(properties.listing())
        return ExitCode.OK
    options = LossOptions.from_cli(args)
    settings = _report_settings(args, options)
    if args.out is not None:
        check_writable(args.out)

    private_hypothesis_home()
    # Import TensorFlow before the user's module does, so its start-up chatter stays quiet.
    from lossaudit.adapter import import_tensorflow

    import_tensorflow()
    from lossaudit.audit import audit
    from lossaudit.render import render

    loss, target = _load(args.target, settings.time_limit, factory=options.factory)
    if args.only:
        # Checked after loading the target: its module may register properties of its own.
        from lossaudit import properties

        for name in args.only:
            properties.get(name)
    diagnosis = None
    if args.logs is not None:
        from lossaudit import logs

        # Bad logs are a usage error: found before the audit spends its time.
        # --component maps the loss's names; the logs' tags use the heuristic (map them with
        # `lossaudit tensorboard --component` when it misses).
        diagnosis = logs.diagnose_logdir(args.logs)
    tty = sys.stderr.isatty()
    report = audit(
        loss,
        options.spec,
        options.codec,
        settings=settings,
        components=options.components,
        only=args.only,
        target=target,
        progress=_progress(sys.stderr) if tty else None,
        **options.calling(),
    )
    if tty:
        sys.stderr.write("\r\x1b[2K")
    if diagnosis is not None:
        from lossaudit import logs

        analysis = dataclasses.replace(report.analysis, logs=logs.curves_for_report(diagnosis))
        report = dataclasses.replace(report, analysis=analysis)
    color = args.color == "always" or (args.color == "auto" and args.out is None and out.isatty())
    options = {"color": color, "verbose": args.verbose} if args.format == "text" else {}
    text = render(report, args.format, **options)
    if args.out is not None:
        try:
            write_atomic(args.out, text)
        except OSError as exc:
            raise UsageError(
                f"cannot write the report to {str(args.out)!r}: {exc.strerror or exc}. "
                "Choose a path you can write to."
            ) from None
        summary = report.summary
        out.write(
            f"lossaudit: wrote {args.format} report to {args.out}: "
            f"{summary['pass']} passed, {summary['fail']} failed, {summary['error']} errors, {summary['warn']} warnings\n"
        )
    else:
        out.write(text)
    return ExitCode.OK if report.ok else ExitCode.FAILED


def _check(args: argparse.Namespace, out: TextIO) -> ExitCode:
    from lossaudit import gate
    from lossaudit.render.check import render_check

    config = gate.load_gate(args.config)
    for path, what in ((args.out, "--out"), (args.html, "--html")):
        if path is not None:
            check_writable(path, what)
    private_hypothesis_home()
    settings = config.settings(args.profile)
    reports, drifts, has_baseline = gate.run_check(
        config,
        loader=lambda cfg: _load(cfg.target, settings.time_limit, factory=cfg.options.factory)[0],
        settings=settings,
        analyse=args.html is not None,
    )
    rows = [d.row() for d in drifts]
    text = render_check(
        reports,
        rows,
        baseline=config.baseline.name if has_baseline else str(config.baseline),
        compared=has_baseline,
        markdown=args.format == "markdown",
        hint=f"`lossaudit baseline{' --config ' + str(args.config) if args.config else ''}`",
    )
    out.write(text)
    if args.out is not None:
        write_or_explain(args.out, text, "the check output")
    if args.html is not None:
        from lossaudit.render.html import render_html_check

        if not has_baseline:
            compared = f"No baseline at {config.baseline}: values were not compared."
        else:
            compared = f"Compared with {config.baseline.name} on every canonical scene."
        write_or_explain(args.html, render_html_check(reports, rows, compared), "the HTML page")
    ok = all(r.ok for r in reports) and not drifts
    return ExitCode.OK if ok else ExitCode.FAILED


def _baseline(args: argparse.Namespace, out: TextIO) -> ExitCode:
    from lossaudit import gate

    config = gate.load_gate(args.config)
    limit = config.settings().time_limit
    check_writable(config.baseline, "the baseline")
    if config.baseline.exists() and not args.update:
        raise UsageError(
            f"the baseline {str(config.baseline)!r} exists: expected --update to replace it; received "
            "no --update. Run `lossaudit baseline --update` to accept the current values."
        )
    entries = {}
    for cfg in config.losses:
        loss, _ = _load(cfg.target, limit, factory=cfg.options.factory)
        values = gate.measure(loss, cfg, time_limit=limit)
        broken = {scene: v["error"] for scene, v in values.items() if "error" in v}
        if broken:
            scene, message = next(iter(broken.items()))
            sys.stderr.write(
                f"lossaudit: {cfg.target} failed on {len(broken)} canonical scene(s), e.g. {scene}: "
                f"{message}\nNothing was written: fix the loss (see `lossaudit report {cfg.target}`) "
                "before recording a baseline.\n"
            )
            return ExitCode.FAILED
        entries[cfg.target] = (cfg, values)
    write_or_explain(config.baseline, gate.baseline_document(entries), "the baseline")
    scenes = sum(len(v) for _, v in entries.values())
    out.write(f"lossaudit: wrote {config.baseline} ({len(entries)} losses, {scenes} scenes)\n")
    return ExitCode.OK


def _tensorboard(args: argparse.Namespace) -> ExitCode:
    from lossaudit import logs
    from lossaudit.components import check_mapping
    from lossaudit.render.logs import plot_logs_png, render_logs_json, render_logs_text

    for path, what in ((args.out, "--out"), (args.plot, "--plot")):
        if path is not None:
            check_writable(path, what)
    components = check_mapping(args.component or [], source="--component")
    diagnosis = logs.diagnose_logdir(args.logdir, components=components)
    renderer = render_logs_json if args.format == "json" else render_logs_text
    text = renderer(diagnosis)
    for path, what in ((args.plot, "plot"), (args.out, f"{args.format} diagnosis")):
        if path is None:
            continue
        try:
            if path is args.plot:
                write_atomic(path, plot_logs_png(diagnosis), what="--plot")
            else:
                write_atomic(path, text)
        except OSError as exc:
            raise UsageError(
                f"cannot write the {what} to {str(path)!r}: {exc.strerror or exc}. "
                "Choose a path you can write to."
            ) from None
    counts = ", ".join(f"{n} {s}" for s, n in diagnosis.summary.items() if n)
    if args.out is None:
        sys.stdout.write(text)
    else:
        sys.stdout.write(f"lossaudit: wrote {args.format} diagnosis to {args.out}: {counts}\n")
    if args.plot is not None:
        sys.stderr.write(f"lossaudit: wrote the curves to {args.plot}\n")
    return ExitCode.OK if diagnosis.ok else ExitCode.FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns an :class:`ExitCode`."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from lossaudit import __version__

        sys.stdout.write(f"lossaudit {__version__}\n")
        return ExitCode.OK
    if args.command is None:
        parser.print_help(sys.stderr)
        return ExitCode.USAGE
    try:
        if args.command == "tensorboard":
            return _tensorboard(args)
        command = {"check": _check, "baseline": _baseline, "report": _report}[args.command]
        with report_stream() as out:
            return command(args, out)
    except (LossAuditError, UsageError) as exc:
        sys.stderr.write(f"lossaudit: error: {exc}\n")
        return ExitCode.USAGE
    except KeyboardInterrupt:
        # Every output goes through write_atomic (or plot_png's own temporary file), so an
        # interruption leaves each file either whole or untouched. "\r\x1b[2K" clears a
        # progress line the message would otherwise be appended to.
        clear = "\r\x1b[2K" if sys.stderr.isatty() else ""
        sys.stderr.write(f"{clear}lossaudit: interrupted; no output file was left half-written\n")
        return ExitCode.INTERRUPTED
    except MemoryError as exc:
        sys.stderr.write(
            f"lossaudit: error: ran out of memory ({exc}): expected a grid whose arrays "
            "(batch, H, W, anchors, 5 + classes) fit in this machine's memory; received one "
            "too large. Audit a smaller grid (--grid, --batch, --anchors, --classes): the "
            "properties hold or fail the same way on a few cells.\n"
        )
        return ExitCode.USAGE
    except Exception as exc:  # a lossaudit bug: say so plainly, still no traceback dump
        from lossaudit.adapter import describe_exception

        sys.stderr.write(
            f"lossaudit: internal error: {describe_exception(exc)}\n"
            "This is a bug in lossaudit; please report it with the command you ran.\n"
        )
        return ExitCode.INTERNAL


#: Subcommands that run the user's code, so run in a supervised child process.
SUPERVISED = ("report", "check", "baseline")


def run(argv: Sequence[str] | None = None) -> int:
    """The ``lossaudit`` command (console script and ``python -m lossaudit``).

    ``report``, ``check`` and ``baseline`` run in a child process under a supervisor
    (:mod:`lossaudit.supervisor`) that stops a loss holding the GIL past its time limit and
    fails closed when the process ends without a verdict (``os._exit``); everything else, and
    :func:`main` called from Python, runs in this process.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if watchdog.supervised():
        from lossaudit.supervisor import child_main

        return child_main(main, argv)
    args = build_parser().parse_args(argv)
    if args.command not in SUPERVISED or args.version or getattr(args, "list", False):
        return main(argv)
    from lossaudit.supervisor import closed_outputs, run_child

    ended = run_child(argv)
    if not ended.what:
        return ended.code
    if ended.what == "interrupted":
        sys.stderr.write(f"lossaudit: {ended.describe()}\n")
        return ExitCode.INTERRUPTED
    sys.stderr.write(f"lossaudit: error: {ended.describe()}\n")
    try:
        closed_outputs(args, ended, _header(args))
    except (LossAuditError, UsageError) as exc:
        sys.stderr.write(f"lossaudit: error: {exc}\n")
    return ExitCode.FAILED


def _header(args: argparse.Namespace) -> dict[str, Any] | None:
    """The header of ``report``'s report as the child would have written it."""
    if args.command != "report":
        return None
    from lossaudit.audit import report_header
    from lossaudit.targets import DEFAULT_TARGET

    try:
        options = LossOptions.from_cli(args)
        settings = _report_settings(args, options)
    except LossAuditError:
        return None
    target = args.target or DEFAULT_TARGET
    return report_header(target, options.spec, options.codec, settings)


if __name__ == "__main__":
    raise SystemExit(run())
