"""`roost hooks install|uninstall|status`: roost's hook merged into real settings files beside
the user's own hooks and keys, taken out again leaving the file meaning what it meant, Codex's
notify chained, malformed files refused unchanged, restrictions said."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ptyprocess import PtyProcessUnicode

from services.agents.hook import THEN
from services.agents.install import (
    CLAUDE_EVENTS,
    GEMINI_EVENTS,
    AgentFiles,
    HookError,
    apply,
    is_roost_hook,
    plan_install,
    plan_uninstall,
    status,
)
from services.agents.model import Agent
from services.core.files import FileError

ROOST = Path("/opt/roost/bin/roost")
NOW = datetime(2026, 12, 2, 22, 0, tzinfo=UTC)
USER_CLAUDE = {
    "model": "opus",
    "env": {"FOO": "1"},
    "permissions": {"allow": ["Bash(ls:*)"]},
    "hooks": {
        "Stop": [{"matcher": "", "hooks": [{"type": "command", "command": "notify-send done"}]}],
        "PreToolUse": [
            {"matcher": "Bash", "hooks": [{"type": "command", "command": "~/bin/check.sh"}]}
        ],
        "SubagentStop": [{"hooks": [{"type": "command", "command": "true"}]}],
    },
    "futureKey": {"nested": [1, 2, {"x": None}]},
}
USER_CODEX = """\
# Codex settings
model = "gpt-5-codex"  # the model
notify = ["notify-send", "--app-name=Codex #1", "it's \\"done\\""]  # mine

[tui]
notifications = true

[profiles.fast]
notify = ["elsewhere"]
"""


@pytest.fixture
def files(tmp_path: Path) -> AgentFiles:
    return AgentFiles(
        claude=tmp_path / ".claude" / "settings.json",
        codex=tmp_path / ".codex" / "config.toml",
        gemini=tmp_path / ".gemini" / "settings.json",
        claude_managed=(tmp_path / "managed-settings.json",),
    )


def write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def install(agent: Agent, files: AgentFiles) -> Path | None:
    change = plan_install(agent, files, ROOST)
    assert change.changed
    return apply(change, NOW)


def uninstall(agent: Agent, files: AgentFiles) -> Path | None:
    change = plan_uninstall(agent, files)
    assert change.changed
    return apply(change, NOW)


def roost_groups(data: dict[str, Any], event: str, agent: str) -> list[dict[str, Any]]:
    return [
        group
        for group in data["hooks"][event]
        if any(is_roost_hook(h["command"].split(), agent) for h in group["hooks"])
    ]


def test_claude_install_merges_beside_the_users_hooks_and_keys(files: AgentFiles) -> None:
    original = json.dumps(USER_CLAUDE, indent=4)
    write(files.claude, original, 0o640)
    backup = install(Agent.CLAUDE, files)
    data = json.loads(files.claude.read_text())
    assert {k: v for k, v in data.items() if k != "hooks"} == {
        k: v for k, v in USER_CLAUDE.items() if k != "hooks"
    }
    for event in CLAUDE_EVENTS:
        assert roost_groups(data, event, "claude") == [
            {
                "matcher": "",
                "hooks": [{"type": "command", "command": f"{ROOST} hook claude", "timeout": 10}],
            }
        ]
    assert data["hooks"]["Stop"][0] == USER_CLAUDE["hooks"]["Stop"][0]  # type: ignore[index]
    assert data["hooks"]["PreToolUse"][0] == USER_CLAUDE["hooks"]["PreToolUse"][0]  # type: ignore[index]
    assert data["hooks"]["SubagentStop"] == USER_CLAUDE["hooks"]["SubagentStop"]  # type: ignore[index]
    assert files.claude.read_text().startswith('{\n    "model"'), "the file's indentation kept"
    assert stat.S_IMODE(files.claude.stat().st_mode) == 0o640
    assert backup is not None and backup.read_text() == original
    assert backup.name == "settings.json.roost-backup-20261202T220000Z"
    assert stat.S_IMODE(backup.stat().st_mode) == 0o640

    again = plan_install(Agent.CLAUDE, files, ROOST)
    assert not again.changed and "already installed" in again.summary and again.diff() == []

    uninstall(Agent.CLAUDE, files)
    assert json.loads(files.claude.read_text()) == USER_CLAUDE
    assert not plan_uninstall(Agent.CLAUDE, files).changed


def test_claude_settings_created_then_emptied(files: AgentFiles) -> None:
    change = plan_install(Agent.CLAUDE, files, ROOST)
    assert change.before is None and change.diff()[0] == "--- /dev/null"
    assert apply(change, NOW) is None
    assert stat.S_IMODE(files.claude.stat().st_mode) == 0o600
    assert status(Agent.CLAUDE, files).events == CLAUDE_EVENTS
    uninstall(Agent.CLAUDE, files)
    assert json.loads(files.claude.read_text()) == {}


def test_a_moved_roost_is_updated_in_place(files: AgentFiles) -> None:
    write(files.claude, json.dumps(USER_CLAUDE))
    install(Agent.CLAUDE, files)
    moved = plan_install(Agent.CLAUDE, files, Path("/usr/local/bin/roost"))
    apply(moved, NOW)
    data = json.loads(files.claude.read_text())
    assert [g["hooks"][0]["command"] for g in roost_groups(data, "Stop", "claude")] == [
        "/usr/local/bin/roost hook claude"
    ]


def test_gemini_gets_its_own_shape(files: AgentFiles) -> None:
    user = {"general": {"vimMode": True}, "hooks": {"BeforeTool": [{"matcher": "write_file",
            "hooks": [{"type": "command", "command": "./lint.sh"}]}]}}  # fmt: skip
    write(files.gemini, json.dumps(user, indent=2))
    install(Agent.GEMINI, files)
    data = json.loads(files.gemini.read_text())
    for event in GEMINI_EVENTS:
        assert roost_groups(data, event, "gemini") == [
            {
                "hooks": [
                    {
                        "name": "roost",
                        "type": "command",
                        "command": f"{ROOST} hook gemini",
                        "timeout": 10_000,
                    }
                ]
            }
        ]
    assert data["hooks"]["BeforeTool"][0] == user["hooks"]["BeforeTool"][0]  # type: ignore[index]
    assert status(Agent.GEMINI, files).installed
    uninstall(Agent.GEMINI, files)
    assert json.loads(files.gemini.read_text()) == user


def test_gemini_hooks_disabled_are_said(files: AgentFiles) -> None:
    write(files.gemini, json.dumps({"hooksConfig": {"enabled": False, "disabled": ["roost"]}}))
    found = status(Agent.GEMINI, files).restrictions
    assert len(found) == 2 and "enabled to false" in found[0] and "names roost" in found[1]


def test_codex_notify_chains_the_users_program_and_comes_back(files: AgentFiles) -> None:
    write(files.codex, USER_CODEX)
    before = tomllib.loads(USER_CODEX)
    install(Agent.CODEX, files)
    text = files.codex.read_text()
    after = tomllib.loads(text)
    assert after["notify"] == [str(ROOST), "hook", "codex", THEN, *before["notify"]]
    assert {k: v for k, v in after.items() if k != "notify"} == {
        k: v for k, v in before.items() if k != "notify"
    }
    assert "]  # mine\n" in text, "the line's comment kept"
    state = status(Agent.CODEX, files)
    assert state.installed and state.chained == tuple(before["notify"])
    assert not plan_install(Agent.CODEX, files, ROOST).changed
    uninstall(Agent.CODEX, files)
    assert tomllib.loads(files.codex.read_text()) == before
    assert files.codex.read_text() == USER_CODEX


def test_codex_without_notify_gets_one_and_loses_it_again(files: AgentFiles) -> None:
    original = "# mine\n\nmodel = 'o3'\n[tui]\nnotify = 1\n"
    write(files.codex, original)
    install(Agent.CODEX, files)
    text = files.codex.read_text()
    assert text.startswith(f'# mine\n\nnotify = ["{ROOST}", "hook", "codex"]\nmodel')
    assert tomllib.loads(text)["tui"] == {"notify": 1}
    uninstall(Agent.CODEX, files)
    assert files.codex.read_text() == original


def test_codex_multiline_notify_is_refused_unchanged(files: AgentFiles) -> None:
    original = 'notify = [\n  "notify-send",\n  "done",\n]\n'
    write(files.codex, original)
    with pytest.raises(HookError, match="line 1: notify spans several lines"):
        plan_install(Agent.CODEX, files, ROOST)
    assert files.codex.read_text() == original


def test_codex_notify_that_is_not_a_list_is_refused(files: AgentFiles) -> None:
    write(files.codex, 'notify = "notify-send"\n')
    with pytest.raises(HookError, match="not a list of strings"):
        plan_install(Agent.CODEX, files, ROOST)


@pytest.mark.parametrize(
    ("agent", "text", "where"),
    [
        (Agent.CLAUDE, '{\n  "hooks": {,}\n}\n', "line 2, column 13"),
        (Agent.GEMINI, '{\n  // a comment\n  "a": 1\n}\n', "line 2, column 3"),
        (Agent.CLAUDE, "[1, 2]", "not a JSON object"),
        (Agent.CODEX, 'model = "o3"\nnotify = ["a",,]\n', "at line 2, column"),
    ],
)
def test_malformed_settings_are_refused_unchanged(
    files: AgentFiles, agent: Agent, text: str, where: str
) -> None:
    write(files.of(agent), text)
    with pytest.raises(FileError, match=where):
        plan_install(agent, files, ROOST)
    with pytest.raises(FileError):
        plan_uninstall(agent, files)
    assert files.of(agent).read_text() == text
    assert status(agent, files).problem


def test_a_file_changed_since_it_was_read_is_not_overwritten(files: AgentFiles) -> None:
    write(files.claude, "{}")
    change = plan_install(Agent.CLAUDE, files, ROOST)
    write(files.claude, '{"model": "sonnet"}')
    with pytest.raises(HookError, match="changed since roost read it"):
        apply(change, NOW)
    assert files.claude.read_text() == '{"model": "sonnet"}'


def test_a_symlinked_settings_file_is_written_where_it_points(
    files: AgentFiles, tmp_path: Path
) -> None:
    real = tmp_path / "dotfiles" / "claude.json"
    write(real, "{}")
    files.claude.parent.mkdir()
    files.claude.symlink_to(real)
    install(Agent.CLAUDE, files)
    assert files.claude.is_symlink()
    assert status(Agent.CLAUDE, files).installed


def test_managed_settings_and_disable_all_hooks_are_said(files: AgentFiles) -> None:
    write(files.claude_managed[0], json.dumps({"allowManagedHooksOnly": True}))
    write(files.claude, json.dumps({"disableAllHooks": True}))
    change = plan_install(Agent.CLAUDE, files, ROOST)
    assert len(change.restrictions) == 2
    assert "allowManagedHooksOnly" in " ".join(change.restrictions)
    assert status(Agent.CLAUDE, files).restrictions == change.restrictions


# The command line ------------------------------------------------------------------------


def roost(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "roost"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_asks_unless_told_and_changes_nothing_without_a_terminal(isolated_env: Path) -> None:
    settings_file = isolated_env / ".claude" / "settings.json"
    write(settings_file, json.dumps(USER_CLAUDE))
    refused = roost("hooks", "install", "claude", stdin="y\n")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    dry = roost("hooks", "install", "--dry-run")
    assert dry.returncode == 0
    assert f"+++ {settings_file}" in dry.stdout and "hook claude" in dry.stdout
    assert "codex: skipped" in dry.stdout
    assert json.loads(settings_file.read_text()) == USER_CLAUDE
    done = roost("hooks", "install", "claude", "--yes")
    assert done.returncode == 0 and "roost-backup-" in done.stdout
    assert roost("hooks", "install", "claude", "--yes").stdout.strip().endswith("nothing to change")
    report = json.loads(roost("hooks", "status", "--json").stdout)
    claude = report["agents"][0]
    assert (claude["agent"], claude["installed"], claude["missing"]) == ("claude", True, [])
    assert report["spool"]["waiting"] == 0 and report["spool"]["last_error"] == ""
    assert roost("hooks", "uninstall", "--yes").returncode == 0
    assert json.loads(settings_file.read_text()) == USER_CLAUDE


def test_cli_refuses_hooks_that_would_not_run_unless_forced(isolated_env: Path) -> None:
    settings_file = isolated_env / ".claude" / "settings.json"
    write(settings_file, json.dumps({"disableAllHooks": True}))
    refused = roost("hooks", "install", "claude", "--yes")
    assert refused.returncode == 1 and "disableAllHooks" in refused.stderr
    assert json.loads(settings_file.read_text()) == {"disableAllHooks": True}
    forced = roost("hooks", "install", "claude", "--yes", "--force")
    assert forced.returncode == 0 and "will not run" in forced.stderr
    assert "not run: " in roost("hooks", "status").stdout


def test_cli_reports_a_malformed_file_and_goes_on(isolated_env: Path) -> None:
    write(isolated_env / ".claude" / "settings.json", "{oops")
    write(isolated_env / ".codex" / "config.toml", "")
    ran = roost("hooks", "install", "--yes")
    assert ran.returncode == 1 and "line 1, column 2" in ran.stderr
    assert (isolated_env / ".claude" / "settings.json").read_text() == "{oops"
    assert '"hook", "codex"' in (isolated_env / ".codex" / "config.toml").read_text()
    shown = roost("hooks", "status")
    assert "unreadable" in shown.stdout and "events waiting" in shown.stdout


# Round trips -----------------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
_comment = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=12)
_bare_key = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(lambda k: k != "notify")


@st.composite
def codex_documents(draw: st.DrawFn) -> str:
    lines = [f"# {draw(_comment)}" for _ in range(draw(st.integers(0, 2)))]
    keys = draw(st.lists(_bare_key, max_size=4, unique=True))
    values = [json.dumps(draw(_text), ensure_ascii=False).replace("\x7f", "\\u007f") for _ in keys]
    body = [f"{key} = {value}" for key, value in zip(keys, values, strict=True)]
    if draw(st.booleans()):
        argv = draw(st.lists(_text, min_size=1, max_size=3))
        array = ", ".join(
            json.dumps(w, ensure_ascii=False).replace("\x7f", "\\u007f") for w in argv
        )
        comment = draw(st.sampled_from(["", "  # theirs", " #[x] = 1 '\""]))
        body.insert(draw(st.integers(0, len(body))), f"notify = [{array}]{comment}")
    tables = ["", "[tui]", "notify = 3"] if draw(st.booleans()) else []
    return "\n".join([*lines, *body, *tables]) + draw(st.sampled_from(["", "\n"]))


@settings(
    max_examples=int(os.environ.get("ROOST_FUZZ_EXAMPLES", "150")),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(codex_documents())
def test_codex_install_and_uninstall_round_trip(files: AgentFiles, text: str) -> None:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return  # the generator's few invalid documents say nothing here
    write(files.codex, text)
    change = plan_install(Agent.CODEX, files, ROOST)
    apply(change, NOW)
    installed = tomllib.loads(files.codex.read_text())
    theirs = document.get("notify", [])
    assert installed["notify"] == [
        str(ROOST),
        "hook",
        "codex",
        *([THEN, *theirs] if theirs else []),
    ]
    assert {k: v for k, v in installed.items() if k != "notify"} == {
        k: v for k, v in document.items() if k != "notify"
    }
    assert not plan_install(Agent.CODEX, files, ROOST).changed
    apply(plan_uninstall(Agent.CODEX, files), NOW)
    assert tomllib.loads(files.codex.read_text()) == document
    if "notify" not in document:
        assert files.codex.read_text() == text
    for backup in files.codex.parent.glob("*.roost-backup-*"):
        backup.unlink()


_hook = st.fixed_dictionaries(
    {"type": st.just("command"), "command": st.sampled_from(["true", "~/x.sh", "roost status"])}
)
_group = st.fixed_dictionaries(
    {"hooks": st.lists(_hook, min_size=1, max_size=2)},
    optional={"matcher": st.sampled_from(["", "Bash", "*"])},
)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | _text, lambda inner: st.lists(inner, max_size=3)
)


@settings(
    max_examples=int(os.environ.get("ROOST_FUZZ_EXAMPLES", "150")),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.sampled_from([Agent.CLAUDE, Agent.GEMINI]),
    st.dictionaries(
        st.sampled_from([*CLAUDE_EVENTS, *GEMINI_EVENTS, "Custom"]),
        st.lists(_group, min_size=1, max_size=2),
        max_size=4,
    ),
    st.dictionaries(_bare_key.filter(lambda k: k != "hooks"), _json_values, max_size=3),
)
def test_json_install_and_uninstall_round_trip(
    files: AgentFiles, agent: Agent, hooks: dict[str, Any], others: dict[str, Any]
) -> None:
    original = {**others, **({"hooks": hooks} if hooks else {})}
    path = files.of(agent)
    write(path, json.dumps(original))
    apply(plan_install(agent, files, ROOST), NOW)
    assert status(agent, files).missing == ()
    assert not plan_install(agent, files, ROOST).changed
    apply(plan_uninstall(agent, files), NOW)
    assert json.loads(path.read_text()) == original
    for backup in path.parent.glob("*.roost-backup-*"):
        backup.unlink()


def test_the_roost_command_is_recognised_by_its_name() -> None:
    assert is_roost_hook(["/x/roost", "hook", "codex", THEN, "y"], "codex")
    assert not is_roost_hook(["/x/roost", "hook", "claude"], "codex")
    assert not is_roost_hook(["/x/roost-old", "hook", "codex"], "codex")
    assert not is_roost_hook(["roost", "hook"], "codex")


def test_at_a_terminal_each_change_is_shown_and_asked(isolated_env: Path) -> None:
    settings_file = isolated_env / ".claude" / "settings.json"
    write(settings_file, "{}")
    for answer, installed in (("n", False), ("y", True)):
        process = PtyProcessUnicode.spawn(
            [str(Path(sys.executable).parent / "roost"), "hooks", "install", "claude"],
            env=dict(os.environ),
            dimensions=(50, 200),
        )
        seen = ""
        deadline = time.monotonic() + 60
        while "[y/N]" not in seen:
            assert time.monotonic() < deadline, f"no question: {seen!r}"
            seen += process.read(4096)
        assert "+++ " in seen and "hook claude" in seen, "the diff comes first"
        process.write(f"{answer}\r")
        while process.isalive() or process.exitstatus is None:
            try:
                seen += process.read(4096)
            except EOFError:
                break
        process.wait()
        assert process.exitstatus == 0, seen
        assert status(Agent.CLAUDE, AgentFiles.resolve(os.environ)).installed is installed
