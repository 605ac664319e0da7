"""The public surface: a sorted __all__ of names that exist, and nothing heavy on import."""

from __future__ import annotations

import subprocess
import sys

import lossaudit


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
