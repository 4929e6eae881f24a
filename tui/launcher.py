"""The `roost` console script: `roost hook ...` goes straight to services/agents/hook.py, every
other command to the command line (tui/cli.py).

Agents run `roost hook` on each of their events and wait for it; the command line imports every
service (about a second), the hook only the standard library (tests/perf/bench_hook.py).
`roost hook --help` still reaches the command line, which documents it.
"""

from __future__ import annotations

import sys


def main() -> int:
    words = sys.argv[1:]
    if len(words) >= 2 and words[0] == "hook" and words[1] not in {"-h", "--help"}:
        # Silenced first: whatever happens (even a broken install), the agent sees exit 0 and
        # no output.
        sys.stdout = sys.stderr = None
        try:
            from services.agents.hook import main as hook
        except BaseException:
            return 0
        return hook(words[1:])
    from tui.cli import main as command_line

    return command_line()
