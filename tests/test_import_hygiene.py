"""services/ must stay usable without a screen: importing it loads neither Textual nor Rich.

httpx's own command-line module imports Rich whenever Rich is installed (it is, for Textual), so
the check subtracts what the third-party dependencies load by themselves: what must never
appear is Rich or Textual brought in by roost's own services code.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import services

PROBE = """
import importlib, json, sys
def ui():
    return {m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')}
for dependency in ('httpx', 'docker', 'ptyprocess', 'pyte', 'platformdirs'):
    importlib.import_module(dependency)
baseline = ui()
for name in MODULES:
    importlib.import_module(name)
print(json.dumps({'added': sorted(ui() - baseline), 'textual': 'textual' in sys.modules}))
"""


def test_services_import_no_textual_and_no_rich() -> None:
    # The prefix makes the walk import `services.docker`, never the docker SDK of the same name.
    walk = pkgutil.walk_packages(services.__path__, prefix="services.")
    modules = sorted(info.name for info in walk)
    # Every module on disk, in every package: a package the walk skips (a directory without an
    # __init__.py, say) would otherwise go unchecked.
    root = Path(services.__file__).parent
    on_disk = {
        ".".join(("services", *path.relative_to(root).with_suffix("").parts)).removesuffix(
            ".__init__"
        )
        for path in root.rglob("*.py")
    }
    assert on_disk - {"services"} == set(modules)

    result = subprocess.run(
        [sys.executable, "-c", PROBE.replace("MODULES", repr(modules))],
        capture_output=True,
        text=True,
        check=True,
    )

    assert json.loads(result.stdout) == {"added": [], "textual": False}
