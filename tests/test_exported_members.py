"""The public surface: a sorted __all__ of names that exist, and nothing heavy on import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import lossaudit

ROOT = Path(__file__).resolve().parents[1]


def test_all_is_sorted_and_complete():
    assert lossaudit.__all__ == sorted(lossaudit.__all__)
    for name in lossaudit.__all__:
        assert hasattr(lossaudit, name), name
    public = {
        n
        for n in dir(lossaudit)
        if (not n.startswith("_") and n[0].isupper()) or n in ("audit", "prop")
    }
    assert {"audit", "GridSpec", "Codec", "Report", "Settings"} <= set(lossaudit.__all__)
    assert public - set(lossaudit.__all__) == set()


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


def test_import_does_not_import_tensorflow():
    loaded = _modules_after(
        "import lossaudit, lossaudit.strategies, lossaudit.properties, lossaudit.cli"
    )
    assert "tensorflow" not in loaded
    assert "keras" not in loaded


def test_help_does_not_import_tensorflow():
    loaded = _modules_after(
        "import sys\nfrom lossaudit.cli import main\n"
        "try:\n    main(['report', '--help'])\nexcept SystemExit:\n    pass"
    )
    assert "tensorflow" not in loaded


def _loaded_at_exit(script: str, argv: list[str]) -> set[str]:
    """Every module loaded when ``script`` (a file, run as ``__main__``) exits, however it exits."""
    code = (
        "import atexit, runpy, sys\n"
        "atexit.register(lambda: print('MODULES', *sorted(sys.modules)))\n"
        f"sys.argv = [{script!r}, *{argv!r}]\n"
        f"runpy.run_path({script!r}, run_name='__main__')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stdout + out.stderr
    (line,) = [ln for ln in out.stdout.splitlines() if ln.startswith("MODULES ")]
    return set(line.split()[1:])


@pytest.mark.parametrize("args", [["--help"], ["report", "--help"], ["check", "--help"]])
def test_console_script_help_does_not_import_tensorflow(args):
    script = shutil.which("lossaudit", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("no lossaudit console script next to this Python: pip install -e .")
    loaded = _loaded_at_exit(script, args)
    assert "lossaudit.cli" in loaded
    assert not {"tensorflow", "keras"} & loaded


def test_collecting_the_test_suite_does_not_import_tensorflow():
    # -n 0: collect in this one process, whatever addopts says.
    argv = ["--collect-only", "-q", "-n", "0", "-p", "no:cacheprovider"]
    loaded = _loaded_at_exit(pytest.__file__.replace("__init__.py", "__main__.py"), argv)
    assert {"tests.test_adapter", "tests.properties.test_meta", "lossaudit.cli"} <= loaded
    assert not {"tensorflow", "keras"} & loaded
