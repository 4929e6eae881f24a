"""The fake coding agent (`fake_agent.py`) in a pane of a private tmux server, for tests.

    agent = start_agent(tmux_server, tmp_path, "--question", agent="claude")
    agent.wait_for("Enter to select")      # its screen, read with capture-pane
    ...                                    # answer it (services/agents/answer.py)
    agent.wait_for("ANSWER: ")
    assert agent.event_names()[-1] == "Stop"

Its hooks (Claude Code and Gemini CLI settings, Codex's `notify`) run `hook`, by default
`hook_recorder.py`, which appends each payload with the pane it came from to `records`.
Everything it reads lives under `directory`: the agents' settings directories are given to the
pane explicitly, so no setting of the machine's own agents is ever read. With `installed`, it
reads the settings under `$HOME` instead (the test's own home: what `roost hooks install` wrote
there), and nothing is written for it.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.terminal.tmux import TmuxServer

FAKE_AGENT = Path(__file__).with_name("fake_agent.py")
HOOK_RECORDER = Path(__file__).with_name("hook_recorder.py")
CLAUDE_EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PermissionRequest",
    "PostToolUse",
    "PostToolUseFailure",
    "Notification",
    "Stop",
    "StopFailure",
    "SessionEnd",
)
GEMINI_EVENTS = (
    "SessionStart",
    "BeforeAgent",
    "BeforeTool",
    "AfterTool",
    "Notification",
    "AfterAgent",
    "SessionEnd",
)


@dataclass(frozen=True)
class AgentPane:
    server: TmuxServer
    pane: str
    """tmux's pane id (`%0`)."""
    records: Path
    """What the default hook recorded: one JSON object a line."""

    def screen(self) -> str:
        return self.server.capture_pane(self.pane)

    def wait_for(self, text: str, within: float = 10) -> str:
        """The screen once it shows `text`; fails after `within` s with the screen."""
        deadline = time.monotonic() + within
        while text not in (screen := self.screen()):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {text!r} on:\n{screen}")
            time.sleep(0.02)
        return screen

    def events(self) -> list[dict[str, Any]]:
        """Every record, oldest first: `pane`, `tmux` ($TMUX) and `payload`."""
        if not self.records.exists():
            return []
        return [json.loads(line) for line in self.records.read_text().splitlines()]

    def event_names(self) -> list[str]:
        return [
            record["payload"].get("hook_event_name") or record["payload"].get("type")
            for record in self.events()
        ]


def start_agent(
    server: TmuxServer,
    directory: Path,
    *arguments: str,
    agent: str = "claude",
    hook: str | None = None,
    installed: bool = False,
    size: tuple[int, int] = (100, 30),
    session: str | None = None,
    python: str = sys.executable,
) -> AgentPane:
    """Start the fake `agent` with `arguments` in a new session of `server` (named `session`,
    else tmux's next number), working in `directory/project`, its hooks running `hook` (a shell
    command; the recorder by default), or with `installed` those of the settings under `$HOME`.
    tmux lists the pane's command by the name of `python` (a link named `claude` to the
    interpreter makes it `claude`)."""
    records = directory / "hook-records.jsonl"
    command = hook or shlex.join([sys.executable, str(HOOK_RECORDER), str(records)])
    project = directory / "project"
    project.mkdir(parents=True, exist_ok=True)
    home = Path.home()
    claude, codex = directory / "claude", directory / "codex"
    if installed:
        claude, codex = home / ".claude", home / ".codex"
    else:
        entry = [{"matcher": "", "hooks": [{"type": "command", "command": command}]}]
        hooks = {"hooks": dict.fromkeys(CLAUDE_EVENTS, entry)}
        _write(claude / "settings.json", json.dumps(hooks))
        hooks = {"hooks": dict.fromkeys(GEMINI_EVENTS, entry)}
        _write(home / ".gemini/settings.json", json.dumps(hooks))
        notify = ["sh", "-c", f'{command} "$1"', "notify"]  # the payload: its last argument
        _write(codex / "config.toml", f"notify = {json.dumps(notify)}\n")
    columns, rows = map(str, size)
    argv = [python, str(FAKE_AGENT), "--agent", agent, *arguments]
    named = ("-s", session) if session else ()
    result = subprocess.run(
        server.argv(
            *("new-session", "-d", *named, "-P", "-F", "#{pane_id}", "-x", columns, "-y", rows),
            *("-c", str(project), "-e", f"CLAUDE_CONFIG_DIR={claude}"),
            *("-e", f"CODEX_HOME={codex}", "-e", "LANG=C.UTF-8", shlex.join(argv)),
            # In the same command, so set before the agent can exit: its last screen stays.
            *(";", "set-option", "-w", "remain-on-exit", "on"),
        ),
        capture_output=True,
        text=True,
        check=True,
    )
    return AgentPane(server, result.stdout.strip(), records)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
