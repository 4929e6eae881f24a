"""A hook command for tests: appends what an agent reported to a JSON-lines file.

    python hook_recorder.py FILE            # Claude Code / Gemini CLI: the payload on stdin
    python hook_recorder.py FILE PAYLOAD    # Codex `notify`: the payload as the last argument

Each line: `{"pane": $TMUX_PANE, "tmux": $TMUX, "payload": {...}}`. It stands in for
`roost hook` in tests that must not depend on it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main() -> None:
    path, *rest = sys.argv[1:]
    payload = json.loads(rest[-1] if rest else sys.stdin.read())
    record = {"pane": os.environ.get("TMUX_PANE", ""), "tmux": os.environ.get("TMUX", "")}
    with Path(path).open("a", encoding="utf-8") as file:
        file.write(json.dumps({**record, "payload": payload}) + "\n")


if __name__ == "__main__":
    main()
