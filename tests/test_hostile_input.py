"""Hostile files, tokens and remote text, met by the `roost` command as users run it.

Every file roost reads may be huge, endless, a FIFO or nested 100,000 deep; every token may hold
a line break; every remote string may hold ESC. Each must end in one clear line naming the file
(never "internal error", never a hang), leave the file as it was, and never print or log a
token or a raw control character.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.peers.vellum import VellumPeer, json_reply
from tests.pilot import SIZE, make_app, wait_until
from tests.test_cli import ROOST
from widgets.keyed_table import KeyedTable

TIMEOUT = 30
"""Far more than any of these commands needs; a hang (a FIFO read) fails the test here."""

CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
"""What must never reach a terminal from outside (a line break ends a line: it may)."""


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ROOST, *args],
        capture_output=True,
        text=True,
        errors="surrogateescape",
        env={**os.environ, **env},
        timeout=TIMEOUT,
        check=False,
    )


def log_text(tmp_path: Path) -> str:
    log = tmp_path / "roost-log" / "roost.log"
    return log.read_text(errors="surrogateescape") if log.exists() else ""


def state_text(tmp_path: Path) -> str:
    """Everything roost stored: the job history and whatever else is in its state dir."""
    state = tmp_path / "roost-state"
    if not state.exists():
        return ""
    files = (path for path in state.rglob("*") if path.is_file())
    return "".join(path.read_text(errors="surrogateescape") for path in files)


def snapshot(path: Path) -> tuple[str, bytes | str]:
    """What the file is: a FIFO or a symlink stays one; a regular file keeps its bytes."""
    if path.is_symlink():
        return "symlink", str(path.readlink())
    if path.is_fifo():
        return "fifo", ""
    return "file", path.read_bytes()


# Hostile lockfiles ---------------------------------------------------------------------------


def deep_nesting(path: Path) -> None:
    path.write_text('{"assistants": ' + "[" * 100_000 + "]" * 100_000 + "}")


def long_number(path: Path) -> None:
    path.write_text('{"assistants": [], "n": ' + "7" * 5000 + "}")


def dev_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def fifo(path: Path) -> None:
    os.mkfifo(path)


def huge(path: Path) -> None:
    with path.open("wb") as file:
        file.truncate(64 << 20)  # sparse: 64 MiB of zeros on no disk


HOSTILE_FILES: dict[str, tuple[Callable[[Path], object], str]] = {
    "deep nesting": (deep_nesting, "nested more than 64 levels deep"),
    "a 5,000-digit number": (long_number, "a number has more than 4300 digits"),
    "a symlink to /dev/zero": (dev_zero, "cannot be read (a character device, not a regular file)"),
    "a FIFO": (fifo, "cannot be read (a FIFO, not a regular file)"),
    "64 MiB": (huge, "is larger than 8 MiB"),
}


@pytest.mark.parametrize("hostile", HOSTILE_FILES, ids=list(HOSTILE_FILES))
def test_a_hostile_lockfile_is_one_clear_line_and_stays_as_it_is(
    tmp_path: Path, isolated_env: Path, hostile: str
) -> None:
    make, problem = HOSTILE_FILES[hostile]
    lockfile = isolated_env / ".vellum.lock.json"
    make(lockfile)
    before = snapshot(lockfile)
    expected = f"{lockfile}: {problem}"

    for args in (["use"], ["use", "ada"]):
        use = run(*args)
        assert (use.returncode, use.stdout) == (1, ""), use.stderr
        assert use.stderr.startswith(f"roost: {expected}") and use.stderr.count("\n") == 1

    doctor = run("doctor")
    assert doctor.returncode == 1
    assert any(
        line.startswith("FAIL  lockfile") and expected in line
        for line in doctor.stdout.splitlines()
    ), doctor.stdout

    ps = run("ps")
    assert expected in ps.stdout, ps.stdout + ps.stderr
    ps_json = run("ps", "--json")
    assert any(expected in row["detail"] for row in json.loads(ps_json.stdout))

    for result in (use, doctor, ps, ps_json):
        assert "internal error" not in result.stderr
    assert snapshot(lockfile) == before
    assert "Traceback" not in log_text(tmp_path)


def test_a_pid_file_that_is_a_fifo_does_not_hang_ps(tmp_path: Path, isolated_env: Path) -> None:
    instance = tmp_path / "instance"
    (instance / ".vellum/workspace").mkdir(parents=True)
    os.mkfifo(instance / ".vellum/workspace/vellum.pid")
    write_lockfile(
        isolated_env,
        {
            "assistantId": "ada",
            "cloud": "local",
            "runtimeUrl": "http://127.0.0.1:9",
            "resources": {"instanceDir": str(instance)},
        },
    )

    ps = run("ps", "--json")

    assert ps.returncode == 0, ps.stderr
    [row] = [row for row in json.loads(ps.stdout) if row["id"] == "ada"]
    assert row["status"] == "sleeping"


# Hostile config.toml -------------------------------------------------------------------------


CONFIGS: dict[str, tuple[Callable[[Path], object], str]] = {
    "deep nesting": (
        lambda path: path.write_text("a = " + "[" * 100_000 + "]" * 100_000),
        "invalid TOML: nested too deeply",
    ),
    "a dotted key 100,000 deep": (
        lambda path: path.write_text("a" + ".a" * 100_000 + " = 1"),
        "a key is nested more than 64 levels deep (at line 1)",
    ),
    "a 5,000-digit number": (
        lambda path: path.write_text("[health]\nconcurrency = " + "7" * 5000),
        "a number has more than 4300 digits",
    ),
    "a token file of an unknown user": (
        lambda path: path.write_text('[platform]\ntoken_file = "~nosuchuser/x"\n'),
        "platform.token_file: ~nosuchuser is not a home directory here (no such user)",
    ),
    "a symlink to /dev/zero": (dev_zero, "cannot be read (a character device, not a regular file)"),
    "a FIFO": (fifo, "cannot be read (a FIFO, not a regular file)"),
}


@pytest.mark.parametrize("hostile", CONFIGS, ids=list(CONFIGS))
def test_a_hostile_config_is_one_clear_line_and_stays_as_it_is(
    tmp_path: Path, isolated_env: Path, hostile: str
) -> None:
    make, problem = CONFIGS[hostile]
    config = tmp_path / "roost-config" / "config.toml"
    config.parent.mkdir()
    make(config)
    before = snapshot(config)
    write_lockfile(isolated_env, {"assistantId": "ada", "cloud": "gcp"})
    expected = f"{config}: {problem}"

    ps = run("ps")
    assert (ps.returncode, ps.stdout) == (1, "")
    assert ps.stderr == f"roost: {expected}\n"

    doctor = run("doctor")
    assert doctor.returncode == 1
    assert f"FAIL  config          {expected}" in doctor.stdout, doctor.stdout

    use = run("use")  # it needs only the lockfile
    assert (use.returncode, use.stdout) == (0, "ada (the only one)\n"), use.stderr

    assert snapshot(config) == before
    assert "Traceback" not in log_text(tmp_path)


def test_a_roost_dir_of_an_unknown_user_is_one_clear_line() -> None:
    result = run("ps", ROOST_STATE_DIR="~nosuchuser/state")

    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "roost: $ROOST_STATE_DIR: ~nosuchuser is not a home directory here (no such user)\n"
    )


# Tokens that cannot be sent ------------------------------------------------------------------

SECRET = "Zq9-secret-token-value"
"""Never in any output, the log or the state: a token roost refuses is still a secret."""
BAD_TOKENS = {
    "a trailing newline": (SECRET + "\n", "contains a line break (character 23 of 23)"),
    "a trailing CRLF": (SECRET + "\r\n", "contains a line break (character 23 of 24)"),
    "an inner newline": ("Zq9-secret\n-token-value", "contains a line break (character 11 of 23)"),
    "non-ASCII": ("Zq9-sécret-token-value", "contains a character that is not ASCII (character 6"),
}


def write_lockfile(home: Path, *entries: dict[str, Any]) -> Path:
    path = home / ".vellum.lock.json"
    path.write_text(json.dumps({"assistants": list(entries)}, indent=2) + "\n")
    return path


def write_private(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)
    return path


def assert_kept_secret(tmp_path: Path, *results: subprocess.CompletedProcess[str]) -> None:
    for shown in (
        *(r.stdout + r.stderr for r in results),
        log_text(tmp_path),
        state_text(tmp_path),
    ):
        assert "Zq9" not in shown
        assert "Illegal header value" not in shown and "UnicodeEncodeError" not in shown


def rows_by_id(
    result: subprocess.CompletedProcess[str], status: int = 0
) -> dict[str, dict[str, Any]]:
    assert result.returncode == status, result.stderr
    return {row["id"]: row for row in json.loads(result.stdout)}


@pytest.mark.parametrize("bad", BAD_TOKENS, ids=list(BAD_TOKENS))
def test_a_lockfile_bearer_token_that_cannot_be_sent_is_named_not_sent(
    tmp_path: Path, isolated_env: Path, vellum_peer: VellumPeer, bad: str
) -> None:
    token, problem = BAD_TOKENS[bad]
    runtime = vellum_peer.runtime("ada", bearer=token)
    lockfile = write_lockfile(
        isolated_env,
        {
            "assistantId": "ada",
            "cloud": "gcp",
            "runtimeUrl": runtime.base_url,
            "bearerToken": token,
        },
    )

    ps_json = run("ps", "--json")
    ps = run("ps")

    row = rows_by_id(ps_json)["ada"]
    assert row["status"] == "error (token)"
    assert row["detail"] == (
        f"{lockfile}: bearerToken of ada: the token {problem}"
        + ("" if "of 2" in problem else f" of {len(token)})")
        + "; log in again or fix the file"
    )
    assert "error (token)" in ps.stdout and f"{lockfile}: bearerToken of ada" in ps.stdout
    assert vellum_peer.requests_to(f"{runtime.path}/v1/health") == []
    assert_kept_secret(tmp_path, ps_json, ps)


@pytest.mark.parametrize("bad", ["a trailing CRLF", "non-ASCII"])
def test_a_guardian_token_that_cannot_be_sent_is_named_in_ps_and_in_a_backup(
    tmp_path: Path, isolated_env: Path, vellum_peer: VellumPeer, bad: str
) -> None:
    token, problem = BAD_TOKENS[bad]
    runtime = vellum_peer.runtime("ada", bearer=token)
    write_lockfile(
        isolated_env, {"assistantId": "ada", "cloud": "gcp", "runtimeUrl": runtime.base_url}
    )
    guardian = write_private(
        isolated_env / ".config/vellum/assistants/ada/guardian-token.json",
        json.dumps({"accessToken": token, "accessTokenExpiresAt": "2030-01-01T00:00:00Z"}),
    )

    ps_json = run("ps", "--json")
    backup = run("backup", "ada")
    doctor = run("doctor")

    refusal = f"{guardian}: accessToken: the token {problem}"
    assert rows_by_id(ps_json)["ada"]["detail"].startswith(refusal)
    assert backup.returncode == 1
    assert refusal in backup.stderr
    assert doctor.returncode == 1
    assert f"FAIL  token file      {refusal}" in doctor.stdout, doctor.stdout
    assert [r for r in vellum_peer.requests if r.path.startswith(runtime.path)] == []
    assert_kept_secret(tmp_path, ps_json, backup, doctor)


def test_a_platform_token_with_an_inner_newline_stops_ps_with_one_line(
    tmp_path: Path, isolated_env: Path, vellum_peer: VellumPeer
) -> None:
    token, problem = BAD_TOKENS["an inner newline"]
    path = write_private(isolated_env / ".config/vellum/platform-token", token + "\n")
    write_lockfile(isolated_env, {"assistantId": "ada", "cloud": "vellum"})

    ps = run("ps", VELLUM_PLATFORM_URL=vellum_peer.url)
    doctor = run("doctor", VELLUM_PLATFORM_URL=vellum_peer.url)

    refusal = f"{path}: the token {problem}; log in again or fix the file"
    assert (ps.returncode, ps.stdout) == (1, "")
    assert ps.stderr == f"roost: {refusal}\n"
    assert doctor.returncode == 1
    assert f"FAIL  token file      {refusal}" in doctor.stdout, doctor.stdout
    assert vellum_peer.requests == ()
    assert_kept_secret(tmp_path, ps, doctor)


# Text from outside ---------------------------------------------------------------------------

HOSTILE_TEXT = "\x1b]0;pwned\x07\x1b[2J\x9b31m\u202e"
"""Retitles the window, clears the screen, a C1 CSI, a bidi override."""


def test_escape_sequences_from_a_runtime_and_the_lockfile_never_reach_the_terminal(
    tmp_path: Path, isolated_env: Path, vellum_peer: VellumPeer
) -> None:
    sick = vellum_peer.runtime(
        "sick",
        health=json_reply(
            {
                "status": "degraded" + HOSTILE_TEXT,
                "message": "bad" + HOSTILE_TEXT,
                "version": "1.0" + HOSTILE_TEXT,
            }
        ),
    )
    well = vellum_peer.runtime(
        "well", health=json_reply({"status": "healthy", "version": "2.0" + HOSTILE_TEXT})
    )
    write_lockfile(
        isolated_env,
        {"assistantId": "sick", "cloud": "gcp", "runtimeUrl": sick.base_url},
        {
            "assistantId": "well",
            "name": "we" + HOSTILE_TEXT + "ll",
            "cloud": "gcp",
            "runtimeUrl": well.base_url,
        },
        {"assistantId": "evil" + HOSTILE_TEXT, "cloud": "gcp", "runtimeUrl": well.base_url},
    )

    ps = run("ps")
    ps_json = run("ps", "--json")
    use = run("use", "sick")

    for result in (ps, ps_json, use):
        assert result.returncode == 0, result.stderr
        assert not CONTROL.search(result.stdout + result.stderr), result.stdout
        assert "\u202e" not in result.stdout
    assert not CONTROL.search(log_text(tmp_path).replace("\n", ""))
    rows = rows_by_id(ps_json)
    escaped = "\\e]0;pwned\\x07\\e[2J\\x9b31m\\u202e"
    assert rows["sick"]["status"] == "degraded" + escaped
    assert rows["sick"]["detail"] == "bad" + escaped
    assert rows["well"]["name"] == "we" + escaped + "ll"
    assert rows["well"]["version"] == "2.0" + escaped
    # An id is used as it is (to match, to name containers), so it cannot be escaped: unusable.
    assert rows["#3"]["status"] == "invalid"
    assert rows["#3"]["detail"] == "assistantId contains control characters"
    assert f"we{escaped}ll" in ps.stdout and f"bad{escaped}" in ps.stdout


async def test_the_main_screen_shows_outside_text_escaped(
    isolated_env: Path, vellum_peer: VellumPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    sick = vellum_peer.runtime(
        "sick",
        health=json_reply(
            {"status": "degraded", "message": "bad" + HOSTILE_TEXT, "version": "1.0" + HOSTILE_TEXT}
        ),
    )
    write_lockfile(
        isolated_env,
        {
            "assistantId": "sick",
            "name": "si" + HOSTILE_TEXT + "ck",
            "cloud": "gcp",
            "runtimeUrl": sick.base_url,
            "species" + HOSTILE_TEXT: "x" + HOSTILE_TEXT,
        },
    )
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#assistants", KeyedTable)

        def cells() -> list[str]:
            return [cell.plain for row in table.rows_shown for cell in row.cells]

        await wait_until(pilot, lambda: any("degraded" in text for text in cells()), "the probe")
        shown = "".join(cells())
        facts = "\n".join(
            f"{label} {value}"
            for a in app.fleet
            for label, value in (
                ("name", a.name),
                ("detail", a.detail),
                ("version", a.version or ""),
                *a.facts,
            )
        )

    assert not CONTROL.search(shown + facts) and "\u202e" not in shown + facts
    assert "si\\e]0;pwned\\x07\\e[2J\\x9b31m\\u202eck" in shown
    assert "1.0\\e]0;pwned" in shown
    assert "detail bad\\e]0;pwned" in facts and "species\\e]0;pwned" in facts


def test_an_organization_id_that_cannot_go_back_in_a_header_is_a_platform_error(
    tmp_path: Path, isolated_env: Path, vellum_peer: VellumPeer
) -> None:
    write_private(isolated_env / ".config/vellum/platform-token", SECRET + "\n")
    vellum_peer.platform.session_tokens.add(SECRET)
    vellum_peer.platform.organizations_override = json_reply({"results": [{"id": "org\r\n1"}]})
    write_lockfile(isolated_env, {"assistantId": "ada", "cloud": "vellum"})

    ps_json = run("ps", "--json", VELLUM_PLATFORM_URL=vellum_peer.url)

    rows = rows_by_id(ps_json, status=1)  # a source (the platform) could not be read
    assert rows["platform"]["detail"] == (
        "platform listing failed: the platform sent an organization id that is not a token"
    )
    assert "org" not in ps_json.stdout.replace("organization", "")
    assert_kept_secret(tmp_path, ps_json)
