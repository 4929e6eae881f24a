"""The `roost` command, run as users run it: the installed console script in a fresh process."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ptyprocess import PtyProcess

import tui.cli
from services.terminal.tmux import TmuxServer
from tests.conftest import new_session

ROOST = str(Path(sys.executable).with_name("roost"))


def roost(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ROOST, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
        check=False,
    )


def in_a_terminal(*args: str, until: str | None = None, within: float = 30) -> tuple[str, int]:
    """Run roost in a real PTY (80x24): everything it wrote, and its exit status. With
    `until`, wait for that text on the screen, then leave with ctrl+q."""
    process = PtyProcess.spawn([ROOST, *args], env=dict(os.environ), dimensions=(24, 80))
    output = b""
    deadline = time.monotonic() + within
    try:
        while True:
            if time.monotonic() > deadline:
                raise AssertionError(f"roost {' '.join(args)} still running: {output[-2000:]!r}")
            if not select.select([process.fd], [], [], 0.1)[0]:
                continue
            try:
                output += process.read(65536)
            except EOFError:
                break
            if until is not None and until in screen_text(output):
                until = None
                process.write(b"\x11")  # ctrl+q
        process.wait()
        return output.decode("utf-8", "replace"), process.exitstatus
    finally:
        if process.isalive():
            process.terminate(force=True)


def screen_text(output: bytes) -> str:
    """What a terminal shows, roughly: the text with every escape sequence removed."""
    text = output.decode("utf-8", "replace")
    return re.sub(r"\x1b(\[[0-9;?<=>]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|.)", "", text)


def test_version() -> None:
    result = roost("--version")

    assert result.returncode == 0
    assert result.stdout.startswith("roost ")


def test_help_lists_every_subcommand_with_one_line() -> None:
    result = roost("--help")

    assert result.returncode == 0
    for command in ("paths", "doctor"):
        assert any(line.strip().startswith(command) for line in result.stdout.splitlines())


def test_an_unknown_flag_is_a_usage_error() -> None:
    result = roost("--frobnicate")

    assert result.returncode == 2
    assert "usage: roost" in result.stderr
    assert "--frobnicate" in result.stderr


def test_paths_shows_every_directory_and_the_lockfile(tmp_path: Path) -> None:
    result = roost("paths")

    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert str(tmp_path / "roost-config") in lines["config"]
    assert str(tmp_path / "roost-state") in lines["state"]
    assert str(tmp_path / "roost-cache") in lines["cache"]
    assert str(tmp_path / "roost-log") in lines["logs"]
    assert ".vellum.lock.json" in lines["lockfile"] and "absent" in lines["lockfile"]
    assert not (tmp_path / "roost-log").exists()  # looking creates nothing


def test_paths_json_follows_the_lockfile_override(tmp_path: Path) -> None:
    (tmp_path / "locks").mkdir()
    (tmp_path / "locks" / ".vellum.lockfile.json").write_text("{}")

    result = roost("paths", "--json", VELLUM_LOCKFILE_DIR=str(tmp_path / "locks"))

    table = json.loads(result.stdout)
    assert table["lockfile"] == str(tmp_path / "locks" / ".vellum.lockfile.json")
    assert table["lockfile_exists"] is True
    assert table["log_file"] == str(tmp_path / "roost-log" / "roost.log")


def verdicts(output: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in output.splitlines():
        verdict, rest = line.split(maxsplit=1)
        found.setdefault(verdict, []).append(rest)
    return found


def test_doctor_passes_on_a_healthy_setup(tmux_server: TmuxServer) -> None:
    new_session(tmux_server, "one")

    environ = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    result = subprocess.run(
        [ROOST, "doctor"], capture_output=True, text=True, env=environ, timeout=60, check=False
    )

    assert result.returncode == 0, result.stdout
    found = verdicts(result.stdout)
    assert "FAIL" not in found
    assert any(line.startswith("tmux ") and "tmux 3" in line for line in found["OK"])
    assert any("1 sessions" in line for line in found["OK"])
    # The default socket is optional: with no Docker here it is a warning, never a failure.
    assert any(line.startswith("docker default") for line in found["OK"] + found["WARN"])


def test_doctor_fails_when_docker_host_names_an_engine_that_is_down() -> None:
    result = roost("doctor", DOCKER_HOST="unix:///nonexistent/docker.sock")

    assert result.returncode == 1
    [failure] = verdicts(result.stdout)["FAIL"]
    assert failure.startswith("docker default") and "no engine socket there" in failure


def test_doctor_fails_on_a_readable_token_a_broken_lockfile_and_a_dead_engine(
    tmp_path: Path, isolated_env: Path
) -> None:
    token = isolated_env / ".config/vellum/platform-token"
    token.parent.mkdir(parents=True)
    token.write_text("secret-value\n")
    token.chmod(0o644)
    (isolated_env / ".vellum.lock.json").write_text('{"assistants": [\n,]}')
    config = tmp_path / "roost-config" / "config.toml"
    config.parent.mkdir()
    config.write_text('[[docker.engines]]\nname = "gone"\nhost = "unix:///nonexistent/d.sock"\n')

    result = roost("doctor")

    assert result.returncode == 1
    failures = "\n".join(verdicts(result.stdout)["FAIL"])
    assert f"chmod 600 {token}" in failures
    assert ".vellum.lock.json, line 2, column 1" in failures
    assert "docker gone" in failures and "nonexistent" in failures
    assert "secret-value" not in result.stdout + result.stderr


def test_doctor_reports_an_invalid_config_and_keeps_checking(tmp_path: Path) -> None:
    config = tmp_path / "roost-config" / "config.toml"
    config.parent.mkdir()
    config.write_text("[tmux]\nsocket = 7\n")

    result = roost("doctor")

    assert result.returncode == 1
    found = verdicts(result.stdout)
    assert any("tmux.socket: must be a string" in line for line in found["FAIL"])
    assert any(line.startswith("log dir") for line in found["OK"])


def test_an_invalid_config_stops_roost_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    config = tmp_path / "roost-config" / "config.toml"
    config.parent.mkdir()
    config.write_text('[keys]\nnot_a_binding = "x"\n')

    output, status = in_a_terminal()

    assert status == 1
    assert output.count("\n") == 1
    assert output.startswith(f"roost: {config}: keys.not_a_binding: no key has this id")
    assert "Traceback" not in output


def test_an_unwritable_log_dir_fails_doctor_with_a_hint(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")

    result = roost("doctor", ROOST_LOG_DIR=str(blocker / "logs"))

    assert result.returncode == 1
    assert any(
        line.startswith("log dir") and "ROOST_LOG_DIR" in line
        for line in verdicts(result.stdout)["FAIL"]
    )


def test_an_unexpected_error_is_one_line_and_its_traceback_goes_to_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(args: object) -> int:
        raise RuntimeError("something nobody expected")

    monkeypatch.setattr(tui.cli, "show_paths", broken)

    status = tui.cli.main(["paths"])

    log_file = tmp_path / "roost-log" / "roost.log"
    captured = capsys.readouterr()
    assert status == 1
    assert captured.err == f"roost: internal error; details are in {log_file}\n"
    log_text = log_file.read_text()
    assert "Traceback" in log_text and "something nobody expected" in log_text


def test_doctor_checks_the_token_files_config_toml_names(tmp_path: Path) -> None:
    platform_token, lab_token = tmp_path / "platform-token", tmp_path / "lab-token"
    for path, mode in ((platform_token, 0o644), (lab_token, 0o600)):
        path.write_text("secret-value\n")
        path.chmod(mode)
    config = tmp_path / "roost-config" / "config.toml"
    config.parent.mkdir()
    config.write_text(
        f'[platform]\ntoken_file = "{platform_token}"\n'
        f'[[runtimes]]\nname = "lab"\nurl = "http://127.0.0.1:9"\ntoken_file = "{lab_token}"\n'
    )

    result = roost("doctor", DOCKER_HOST="unix:///nonexistent/docker.sock")

    found = verdicts(result.stdout)
    assert any(f"chmod 600 {platform_token}" in line for line in found["FAIL"])
    assert any(str(lab_token) in line for line in found["OK"])
    assert "secret-value" not in result.stdout + result.stderr


def test_ps_lists_each_tmux_session_as_a_row_under_this_machine(tmux_server: TmuxServer) -> None:
    new_session(tmux_server, "build", windows=2)
    new_session(tmux_server, "api")

    listed = roost("ps", "--json")
    text = roost("ps")

    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    host = next(row for row in rows if row["kind"] == "local host")
    sessions = [row for row in rows if row["kind"] == "tmux session"]
    assert [(row["name"], row["detail"], row["status"]) for row in sessions] == [
        ("api", "1 window", "detached"),
        ("build", "2 windows", "detached"),
    ]
    assert all(row["where"] == host["where"] and row["on"] == host["id"] for row in sessions)
    assert all(row["activity"] is None for row in sessions)  # no agent in them
    assert "├ api" in text.stdout and "└ build" in text.stdout
