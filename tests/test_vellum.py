"""The Vellum environment, its files, and reading the lockfile without ever damaging it."""

from __future__ import annotations

import json
from pathlib import Path

from services.vellum import VellumEnvironment, read_lockfile


def env(home: Path, **variables: str) -> dict[str, str]:
    return {"HOME": str(home), **variables}


def test_production_by_default_with_the_legacy_fallback(tmp_path: Path) -> None:
    environment = VellumEnvironment.resolve(env(tmp_path))

    assert (environment.name, environment.source, environment.warning) == (
        "production",
        "default",
        None,
    )
    assert environment.config_dir == tmp_path / ".config" / "vellum"
    assert environment.lockfile_candidates == (
        tmp_path / ".vellum.lock.json",
        tmp_path / ".vellum.lockfile.json",
    )
    assert environment.platform_token_file == tmp_path / ".config/vellum/platform-token"


def test_other_environments_live_under_xdg_config(tmp_path: Path) -> None:
    environment = VellumEnvironment.resolve(
        env(tmp_path, VELLUM_ENVIRONMENT="staging", XDG_CONFIG_HOME=str(tmp_path / "x"))
    )

    assert environment.name == "staging"
    assert environment.config_dir == tmp_path / "x" / "vellum-staging"
    assert environment.lockfile_candidates == (tmp_path / "x/vellum-staging/lockfile.json",)


def test_the_environment_file_names_the_environment(tmp_path: Path) -> None:
    (tmp_path / ".config/vellum").mkdir(parents=True)
    (tmp_path / ".config/vellum/environment").write_text("dev\n")

    environment = VellumEnvironment.resolve(env(tmp_path))

    assert environment.name == "dev"
    assert environment.source.endswith("vellum/environment")


def test_an_unknown_environment_warns_and_uses_production(tmp_path: Path) -> None:
    environment = VellumEnvironment.resolve(env(tmp_path, VELLUM_ENVIRONMENT="moon"))

    assert environment.name == "production"
    assert environment.warning is not None and "'moon'" in environment.warning


def test_lockfile_dir_replaces_the_directory_in_every_environment(tmp_path: Path) -> None:
    lock_dir = str(tmp_path / "locks")
    production = VellumEnvironment.resolve(env(tmp_path, VELLUM_LOCKFILE_DIR=lock_dir))
    local = VellumEnvironment.resolve(
        env(tmp_path, VELLUM_LOCKFILE_DIR=lock_dir, VELLUM_ENVIRONMENT="local")
    )

    assert production.lockfile_candidates[0] == tmp_path / "locks/.vellum.lock.json"
    assert local.lockfile_candidates == (tmp_path / "locks/lockfile.json",)


def test_the_first_candidate_that_parses_wins_and_broken_ones_are_reported(
    tmp_path: Path,
) -> None:
    environment = VellumEnvironment.resolve(env(tmp_path))
    broken, legacy = environment.lockfile_candidates
    broken.write_text('{\n  "assistants": [\n    {"assistantId": "a",}\n  ]\n}\n')
    legacy.write_text(json.dumps({"assistants": [{"assistantId": "old"}], "x-extra": 1}))
    before = broken.read_bytes(), broken.stat().st_mtime_ns

    read = read_lockfile(environment)

    assert read.path == legacy
    assert read.assistants == [{"assistantId": "old"}]
    assert read.data["x-extra"] == 1
    [problem] = read.problems
    assert (problem.path, problem.line) == (broken, 3)
    assert f"{broken}, line 3, column" in str(problem)
    assert (broken.read_bytes(), broken.stat().st_mtime_ns) == before


def test_a_lockfile_that_is_not_an_object_is_skipped(tmp_path: Path) -> None:
    environment = VellumEnvironment.resolve(env(tmp_path))
    environment.lockfile_candidates[0].write_text("[1, 2]")

    read = read_lockfile(environment)

    assert read.path is None and read.assistants == []
    assert [p.problem for p in read.problems] == ["the top level is an array, not an object"]


def test_no_lockfile_is_no_problem(tmp_path: Path) -> None:
    read = read_lockfile(VellumEnvironment.resolve(env(tmp_path)))

    assert (read.path, read.data, read.problems) == (None, {}, ())


def test_bytes_that_are_not_utf8_are_reported(tmp_path: Path) -> None:
    environment = VellumEnvironment.resolve(env(tmp_path))
    environment.lockfile_candidates[0].write_bytes(b'{"a": "\xff"}')

    read = read_lockfile(environment)

    assert read.path is None
    assert "not UTF-8" in read.problems[0].problem
