"""A fake coding agent for tests: run in a pane of a private tmux server, it plays one scripted
turn of Claude Code, Codex or Gemini CLI as a supervisor sees it, from outside.

    python fake_agent.py [--agent claude|codex|gemini] [--command CMD] [--question]
                         [--fail ERROR] [--work] [--notification] [--end] [--session-id ID]

It reports its events exactly as the real agent would (../shared/AGENT-SIGNALS.md):

- claude: the hooks of `$CLAUDE_CONFIG_DIR/settings.json` (else `~/.claude/settings.json`), then
  the project's `.claude/settings.json` and `.claude/settings.local.json`, every matching entry's
  `command` run through `sh -c` with the JSON payload on stdin, in the agent's environment (so
  `$TMUX` and `$TMUX_PANE` name the pane), matchers honoured;
- gemini: the same from `~/.gemini/settings.json` and `.gemini/settings.json`, with Gemini's
  event names and fields;
- codex: `notify` of `$CODEX_HOME/config.toml` (else `~/.codex/config.toml`), run as an argv
  with the JSON payload appended, at the end of the turn.

The turn: the session starts; the user's prompt is submitted; then the agent asks to run a shell
command (`--command`, default `npm test`) in the agent's own permission dialog and reads ONE key
from its terminal (raw for the whole run, so nothing typed early is lost). Claude and Gemini:
`1`/Enter allow, `2` allow and don't ask again (for this session), `3`/Esc deny; Codex: `y`/`1`/
Enter, `p`/`2`, `n`/`3`/Esc. Other keys are ignored. `--question` asks a question instead: Claude's
question menu (a digit picks a choice; `3`, "Type something.", then takes a line ended by Enter;
Esc cancels), a plain question answered in the composer for the others. `--fail ERROR` ends the
turn in that API error; `--work` never ends it: the agent runs the command, its working line
(spinner, "esc to interrupt") at the bottom, until the pane closes. The dialog is erased once
answered (the screen is drawn again from its transcript), and the outcome printed plainly, after
the hooks of the turn have run, so a test waits for it on the screen (capture-pane) and then
reads the hooks' records:

    ANSWER: allow | always | deny | <the choice or the line typed> | cancel
    FAILED: <error>      SESSION END

Afterwards it idles at a `> ` prompt that echoes what is typed (so a test can see that nothing
was), unless `--end` ends the session.

Hooks run one after the other and are waited for (the real agents run them in parallel, and
Codex does not wait for `notify`): nothing here needs a test to sleep.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import termios
import tomllib
import tty
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ESC = "\x1b"
CLAUDE_CURSOR = "\u276f"  # the menus' cursor: heavy right-pointing angle
CODEX_CURSOR = "\u203a"  # single right-pointing angle quotation mark
TOOL_EVENTS = {"PreToolUse", "PostToolUse", "PostToolUseFailure", "PermissionRequest"}
GEMINI_TOOL_EVENTS = {"BeforeTool", "AfterTool"}
MATCHED_FIELD = {
    "Notification": "notification_type",
    "SessionStart": "source",
    "SessionEnd": "reason",
    "StopFailure": "error",
}
"""What a non-tool event's matcher is matched against."""
QUESTION = "Which branch should I deploy?"


@dataclass
class Agent:
    """One fake agent session: its transcript on screen and the hooks it reports to."""

    kind: str
    session_id: str
    command: str
    cwd: str = field(default_factory=os.getcwd)
    transcript: list[str] = field(default_factory=list)

    # -- the screen ------------------------------------------------------------------------

    def draw(self, *below: str) -> None:
        """Draw the screen again: the transcript, then `below` (a dialog, an input line)."""
        lines = [*self.transcript, *below]
        sys.stdout.write("\x1b[H\x1b[2J" + "\r\n".join(lines))
        sys.stdout.flush()

    def say(self, *lines: str) -> None:
        self.transcript.extend(lines)
        self.draw()

    def box(self, lines: Sequence[str]) -> list[str]:
        """`lines` in a rounded box as wide as the terminal (a longer line wraps, as it does in
        the real agents)."""
        width = max(20, shutil.get_terminal_size((80, 24)).columns - 1)
        inner = width - 4
        return [
            "╭" + "─" * (width - 2) + "╮",
            *(f"│ {line.ljust(inner)} │" for line in lines),
            "╰" + "─" * (width - 2) + "╯",
        ]

    # -- hooks -----------------------------------------------------------------------------

    def common(self, event: str) -> dict[str, Any]:
        home = Path.home()
        if self.kind == "gemini":
            transcript = home / ".gemini/tmp" / f"{self.session_id}.json"
            return {
                "session_id": self.session_id,
                "transcript_path": str(transcript),
                "cwd": self.cwd,
                "hook_event_name": event,
                "timestamp": "2026-01-01T00:00:00.000Z",
            }
        slug = re.sub(r"[^A-Za-z0-9]", "-", self.cwd)
        transcript = home / ".claude/projects" / slug / f"{self.session_id}.jsonl"
        return {
            "session_id": self.session_id,
            "transcript_path": str(transcript),
            "cwd": self.cwd,
            "permission_mode": "default",
            "hook_event_name": event,
        }

    def hook(self, event: str, **fields: Any) -> None:
        """Run every hook configured for `event` with its payload (Claude, Gemini)."""
        payload = {**self.common(event), **fields}
        tool_events = GEMINI_TOOL_EVENTS if self.kind == "gemini" else TOOL_EVENTS
        subject = payload.get("tool_name" if event in tool_events else MATCHED_FIELD.get(event, ""))
        for entry in self.entries(event):
            matcher = entry.get("matcher") or ""
            if isinstance(subject, str) and not matches(matcher, subject):
                continue
            for hook in entry.get("hooks") or ():
                if isinstance(hook, dict) and hook.get("type") == "command":
                    self.run_hook(event, hook, payload)

    def entries(self, event: str) -> list[dict[str, Any]]:
        """Every settings entry for `event`, from every settings file, user level first."""
        entries: list[dict[str, Any]] = []
        for path in self.settings_files():
            try:
                settings = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            hooks = settings.get("hooks") if isinstance(settings, dict) else None
            found = hooks.get(event) if isinstance(hooks, dict) else None
            entries.extend(entry for entry in found or () if isinstance(entry, dict))
        return entries

    def settings_files(self) -> list[Path]:
        project = Path(self.cwd)
        if self.kind == "gemini":
            return [Path.home() / ".gemini/settings.json", project / ".gemini/settings.json"]
        configured = os.environ.get("CLAUDE_CONFIG_DIR")
        user = Path(configured) if configured else Path.home() / ".claude"
        return [
            user / "settings.json",
            project / ".claude/settings.json",
            project / ".claude/settings.local.json",
        ]

    def run_hook(self, event: str, hook: Mapping[str, Any], payload: Mapping[str, Any]) -> None:
        environ = {**os.environ, "CLAUDE_PROJECT_DIR": self.cwd}
        if self.kind == "gemini":
            environ = {**os.environ, "GEMINI_PROJECT_DIR": self.cwd}
        timeout = hook.get("timeout")
        try:
            result = subprocess.run(
                ["sh", "-c", str(hook.get("command", ""))],
                input=json.dumps(payload),
                capture_output=True,
                text=True,
                env=environ,
                cwd=self.cwd,
                timeout=timeout if isinstance(timeout, int | float) else 60,
                check=False,
            )
        except subprocess.TimeoutExpired:
            self.say(f"{event} hook timed out")
            return
        if result.returncode != 0:
            self.say(f"{event} hook error: exit status {result.returncode}")

    def notify(self, payload: Mapping[str, Any]) -> None:
        """Run Codex's `notify` program with `payload` as its last argument."""
        home = os.environ.get("CODEX_HOME") or str(Path.home() / ".codex")
        try:
            config = tomllib.loads((Path(home) / "config.toml").read_text())
        except (OSError, ValueError):
            return
        argv = config.get("notify")
        if isinstance(argv, list) and argv and all(isinstance(arg, str) for arg in argv):
            subprocess.run(
                [*argv, json.dumps(payload)], capture_output=True, timeout=60, check=False
            )


def matches(matcher: str, subject: str) -> bool:
    """A settings entry's matcher: empty or `*` matches everything, else a regular expression
    that must match the whole name (a plain name matches only itself)."""
    if matcher in ("", "*"):
        return True
    try:
        return re.fullmatch(matcher, subject) is not None
    except re.error:
        return matcher == subject


def read_key() -> str:
    """One key from the terminal (a lone Esc, Enter as `\\r`)."""
    return read_key_bytes().decode(errors="replace")


def read_key_bytes() -> bytes:
    """One byte from the terminal (raw for the whole run); empty when it closed."""
    byte = os.read(sys.stdin.fileno(), 1)
    if byte == b"\x03":
        raise KeyboardInterrupt
    return byte


def choose(keys: Mapping[str, str]) -> str:
    """The outcome of the first key read that `keys` knows."""
    while True:
        key = read_key()
        if key in keys:
            return keys[key]
        if key == "":
            raise SystemExit("the terminal closed")


# -- Claude Code ---------------------------------------------------------------------------


def claude_turn(agent: Agent, arguments: argparse.Namespace) -> None:
    agent.say("✻ Welcome to Claude Code!", f"  cwd: {agent.cwd}", "")
    agent.hook("SessionStart", source="startup")
    prompt = "run the tests"
    agent.say(f"> {prompt}", "")
    agent.hook("UserPromptSubmit", prompt=prompt)
    if arguments.fail:
        agent.hook(
            "StopFailure", error=arguments.fail, error_details=f"API Error: {arguments.fail}"
        )
        agent.say(f"  ⎿  API Error: {arguments.fail}", "", f"FAILED: {arguments.fail}")
        return
    if arguments.question:
        claude_question(agent)
        return
    tool_use_id = "toolu_01FakeAgent" + agent.session_id[:8]
    tool_input = {"command": agent.command, "description": "Run the test suite"}
    agent.hook("PreToolUse", tool_name="Bash", tool_input=tool_input, tool_use_id=tool_use_id)
    if arguments.work:
        work(agent, f"⏺ Bash({agent.command})", "✻ Running the test suite… (esc to interrupt)")
    suggestion = {
        "type": "addRules",
        "rules": [{"toolName": "Bash", "ruleContent": f"{agent.command}:*"}],
        "behavior": "allow",
        "destination": "localSettings",
    }
    agent.hook(
        "PermissionRequest",
        tool_name="Bash",
        tool_input=tool_input,
        tool_use_id=tool_use_id,
        permission_suggestions=[suggestion],
    )
    agent.draw(
        *agent.box(
            [
                "Bash command",
                "",
                f"  {agent.command}",
                "  Run the test suite",
                "",
                "Do you want to proceed?",
                f"{CLAUDE_CURSOR} 1. Yes",
                f"  2. Yes, and don't ask again for {agent.command} commands in {agent.cwd}",
                "  3. No, and tell Claude what to do differently (esc)",
            ]
        )
    )
    if arguments.notification:
        agent.hook(
            "Notification",
            message="Claude needs your permission to use Bash",
            notification_type="permission_prompt",
        )
    outcome = choose({"1": "allow", "\r": "allow", "2": "always", "3": "deny", ESC: "deny"})
    agent.transcript.append(f"⏺ Bash({agent.command})")
    if outcome == "deny":
        agent.say("  ⎿  User rejected the command", "")
        agent.hook("Stop", stop_hook_active=False, last_assistant_message="denied")
    else:
        response = {"stdout": "Tests pass", "stderr": "", "interrupted": False}
        agent.say("  ⎿  Tests pass", "")
        agent.hook(
            "PostToolUse",
            tool_name="Bash",
            tool_input=tool_input,
            tool_response=response,
            tool_use_id=tool_use_id,
        )
        agent.say("⏺ Tests pass", "")
        agent.hook("Stop", stop_hook_active=False, last_assistant_message="Tests pass")
    agent.say(f"ANSWER: {outcome}")


def claude_question(agent: Agent) -> None:
    """Claude Code's question menu (AskUserQuestion): a digit picks a choice; the last one,
    "Type something.", takes a line of text; Esc cancels."""
    choices = [("main", "The release branch"), ("staging", "What QA tries first")]
    tool_input = {
        "questions": [
            {
                "question": QUESTION,
                "header": "Deploy",
                "options": [{"label": label, "description": text} for label, text in choices],
                "multiSelect": False,
            }
        ]
    }
    tool_use_id = "toolu_01FakeQuestion" + agent.session_id[:8]
    agent.hook(
        "PreToolUse", tool_name="AskUserQuestion", tool_input=tool_input, tool_use_id=tool_use_id
    )
    agent.hook(
        "Notification",
        message=f"Claude needs your input: {QUESTION}",
        notification_type="elicitation_dialog",
    )
    rule = "─" * 40
    menu = [rule, " ☐ Deploy", "", QUESTION, ""]
    for number, (label, text) in enumerate(choices, 1):
        menu += [f"{CLAUDE_CURSOR if number == 1 else ' '} {number}. {label}", f"     {text}"]
    other = str(len(choices) + 1)
    footer = [rule, f"  {len(choices) + 2}. Chat about this", ""]
    footer.append("Enter to select · ↑/↓ to navigate · Esc to cancel")
    agent.draw(*menu, f"  {other}. Type something.", *footer)
    keys = {str(number): label for number, (label, _) in enumerate(choices, 1)}
    answer = choose({**keys, "\r": choices[0][0], other: "", ESC: "cancel"})
    if answer == "":
        agent.draw(*menu, f"{CLAUDE_CURSOR} {other}. ")  # what follows is echoed here
        answer = read_line()
    agent.transcript.append(f"⏺ User answered: {answer}")
    agent.hook(
        "PostToolUse",
        tool_name="AskUserQuestion",
        tool_input=tool_input,
        tool_response={"answers": {QUESTION: answer}},
        tool_use_id=tool_use_id,
    )
    agent.say("")
    agent.hook("Stop", stop_hook_active=False, last_assistant_message=f"You said: {answer}")
    agent.say(f"ANSWER: {answer}")


def work(agent: Agent, *lines: str) -> None:
    """Stay busy with the turn (`--work`), `lines` at the bottom, until the terminal closes."""
    agent.say(*lines)
    while read_key_bytes():
        pass
    raise SystemExit("the terminal closed")


def read_line() -> str:
    """One line typed at the terminal, read in raw mode (so keys typed before it asked are
    kept) and echoed as it arrives, without its end."""
    typed = b""
    while True:
        key = read_key_bytes()
        if key in (b"\r", b"\n"):
            return typed.decode(errors="replace")
        if key == b"":
            raise SystemExit("the terminal closed")
        typed += key
        sys.stdout.buffer.write(key)
        sys.stdout.flush()


# -- Codex ---------------------------------------------------------------------------------


def codex_turn(agent: Agent, arguments: argparse.Namespace) -> None:
    agent.say(">_ OpenAI Codex (fake)", f"  directory: {agent.cwd}", "")
    prompt = "run the tests"
    agent.say(f"{CODEX_CURSOR} {prompt}", "")
    if arguments.fail:
        agent.say(f"■ {arguments.fail}", "", f"FAILED: {arguments.fail}")
        return
    if arguments.work:
        work(agent, "• Running the test suite (18s • esc to interrupt)")
    if arguments.question:
        agent.say(f"• {QUESTION}", "")
        agent.draw(f"{CODEX_CURSOR} ")
        line = read_line()
        message = f"You said: {line}"
        codex_complete(agent, [prompt, line], message)
        agent.say(f"{CODEX_CURSOR} {line}", "", f"ANSWER: {line}")
        return
    agent.draw(
        "  Would you like to run the following command?",
        "",
        f"  $ {agent.command}",
        "",
        f"{CODEX_CURSOR} 1. Yes, proceed (y)",
        f"  2. Yes, and don't ask again for commands that start with `{agent.command}` (p)",
        "  3. No, and tell Codex what to do differently (esc)",
        "",
        "  Press enter to confirm or esc to cancel",
    )
    outcome = choose(
        {"y": "allow", "1": "allow", "\r": "allow", "p": "always", "2": "always"}
        | {"n": "deny", "3": "deny", ESC: "deny"}
    )
    if outcome == "deny":
        agent.say(f"✗ You did not approve {agent.command}", "")
        message = "denied"
    else:
        agent.say(f"• Ran {agent.command}", "  └ Tests pass", "")
        message = "Tests pass"
    codex_complete(agent, [prompt], message)
    agent.say(f"ANSWER: {outcome}")


def codex_complete(agent: Agent, inputs: list[str], message: str) -> None:
    agent.notify(
        {
            "type": "agent-turn-complete",
            "thread-id": agent.session_id,
            "turn-id": "1",
            "cwd": agent.cwd,
            "input-messages": inputs,
            "last-assistant-message": message,
        }
    )


# -- Gemini CLI ----------------------------------------------------------------------------


def gemini_turn(agent: Agent, arguments: argparse.Namespace) -> None:
    agent.say(" GEMINI (fake)", f"  {agent.cwd}", "")
    agent.hook("SessionStart", source="startup")
    prompt = "run the tests"
    agent.say(f"> {prompt}", "")
    agent.hook("BeforeAgent", prompt=prompt)
    if arguments.fail:
        agent.say(f"✕ [API Error: {arguments.fail}]", "", f"FAILED: {arguments.fail}")
        return
    if arguments.question:
        agent.say(f"✦ {QUESTION}", "")
        agent.draw("> ")
        line = read_line()
        agent.hook("BeforeAgent", prompt=line)
        agent.hook("AfterAgent", prompt=line, prompt_response=f"You said: {line}")
        agent.say(f"> {line}", "", f"ANSWER: {line}")
        return
    tool_input = {"command": agent.command, "description": "Run the test suite"}
    agent.hook("BeforeTool", tool_name="run_shell_command", tool_input=tool_input)
    if arguments.work:
        work(agent, "⠹ Running the test suite (esc to cancel, 18s)")
    agent.hook(
        "Notification",
        notification_type="ToolPermission",
        message=f"Tool run_shell_command requires confirmation: {agent.command}",
        details={"type": "exec", "title": "Confirm Shell Command", "command": agent.command},
    )
    program = agent.command.split()[0] if agent.command.split() else agent.command
    agent.draw(
        *agent.box(
            [
                f"?  Shell {agent.command} [current working directory {agent.cwd}]",
                "",
                agent.command,
                f"Allow execution of: '{program}'?",
                "",
                "● 1. Allow once",
                "  2. Allow for this session",
                "  3. No, suggest changes (esc)",
                "",
            ]
        )
    )
    outcome = choose({"1": "allow", "\r": "allow", "2": "always", "3": "deny", ESC: "deny"})
    if outcome == "deny":
        agent.say(f"-  Shell {agent.command}", "  Tool execution cancelled.", "")
        message = "denied"
    else:
        agent.say(f"✓  Shell {agent.command}", "  Tests pass", "")
        agent.hook(
            "AfterTool",
            tool_name="run_shell_command",
            tool_input=tool_input,
            tool_response={"llmContent": "Tests pass"},
        )
        message = "Tests pass"
    agent.hook("AfterAgent", prompt=prompt, prompt_response=message)
    agent.say(f"ANSWER: {outcome}")


TURNS = {"claude": claude_turn, "codex": codex_turn, "gemini": gemini_turn}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--agent", choices=sorted(TURNS), default="claude")
    parser.add_argument("--command", default="npm test", help="the shell command it asks to run")
    parser.add_argument("--question", action="store_true", help="ask a question instead")
    parser.add_argument("--fail", metavar="ERROR", help="end the turn in this API error")
    parser.add_argument("--work", action="store_true", help="work on the turn until closed")
    parser.add_argument(
        "--notification", action="store_true", help="report the dialog with a Notification too"
    )
    parser.add_argument("--end", action="store_true", help="end the session after the turn")
    parser.add_argument("--session-id", default="5e55a0e1-fake-4a6e-8000-000000000001")
    arguments = parser.parse_args(argv)
    agent = Agent(arguments.agent, arguments.session_id, arguments.command)
    descriptor = sys.stdin.fileno()
    saved = termios.tcgetattr(descriptor)
    tty.setraw(descriptor)  # as the real agents: keys arrive one by one, nothing echoed
    try:
        TURNS[arguments.agent](agent, arguments)
        if arguments.end:
            if agent.kind != "codex":
                agent.hook("SessionEnd", reason="prompt_input_exit")
            agent.say("SESSION END")
            return
        while True:  # idle at its prompt until the pane closes
            agent.draw("> ")
            read_line()
    finally:
        termios.tcsetattr(descriptor, termios.TCSADRAIN, saved)


if __name__ == "__main__":
    main()
