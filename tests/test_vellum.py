"""The Vellum environment: its name, the lockfile candidates and the config dir."""

from __future__ import annotations

from pathlib import Path

from services.vellum.environment import VellumEnvironment


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
