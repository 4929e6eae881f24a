"""services/ must stay usable without a screen: importing it loads neither Textual nor Rich."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import services


def test_services_import_no_textual_and_no_rich() -> None:
    modules = sorted(f"services.{info.name}" for info in pkgutil.walk_packages(services.__path__))
    assert "services.tmux" in modules  # the walk found the package's modules
    probe = (
        f"import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))))"
    )

    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == ""
