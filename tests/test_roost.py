"""The application layer (`services/roost.py`) through real parts: a lockfile on disk, a private
tmux server, the loopback Vellum peer and the private Docker engine. Each operation is called
as the console and the commands call it."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.context import Context
from services.core.config import Config, EngineConfig, RuntimeConfig
from services.core.errors import RoostError
from services.docker.engines import Engine
from services.fleet.model import AssistantKind, Source
from services.jobs.record import Job, JobState
from services.roost import Action, Roost
from services.terminal.attach import HostPlace
from services.terminal.tmux import TmuxServer, TmuxState
from services.vellum.lockfile import read_lockfile
from tests.conftest import new_session
from tests.docker_fixtures import Sandbox
from tests.peers.vellum import Artifact, VellumPeer, refused_url
from tests.test_cli import roost as roost_command
from tests.test_lifecycle import fake_vellum

KINDS = {
    "loc": "local",
    "box": "docker",
    "cloudy": "vellum",
    "vm": "gcp",
    "ec2": "aws",
    "own": "custom",
    "odd": "apple-container",
}


def write_lockfile(
    directory: Path, monkeypatch: pytest.MonkeyPatch, *entries: dict[str, str], **top: str
) -> None:
    """A Vellum lockfile of `entries` in `directory`, the one roost reads from now on."""
    document = {"assistants": list(entries), **top}
    (directory / ".vellum.lock.json").write_text(json.dumps(document))
    monkeypatch.setenv("VELLUM_LOCKFILE_DIR", str(directory))


def every_kind(directory: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    entries = [{"assistantId": a, "cloud": cloud, "runtimeUrl": url} for a, cloud in KINDS.items()]
    write_lockfile(directory, monkeypatch, *entries, activeAssistant="vm")


@contextlib.asynccontextmanager
async def opened(**config: object) -> AsyncIterator[Roost]:
    async with Roost.opened(Context.load(config=Config(**config))) as roost:  # type: ignore[arg-type]
        yield roost


async def drain(jobs: AsyncIterator[Job]) -> list[Job]:
    return [job async for job in jobs]


# --- capabilities ---------------------------------------------------------------------------


async def test_capabilities_follow_the_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    every_kind(tmp_path, monkeypatch, "http://127.0.0.1:9")
    runtime = RuntimeConfig("mine", "http://127.0.0.1:9", None)
    async with opened(runtimes=(runtime,)) as roost:
        fleet = {a.id: a for a in await roost.sweep(health=False)}

        def actions(assistant_id: str) -> set[Action]:
            return set(roost.capabilities(fleet[assistant_id]).actions)

        remote = {Action.BACKUP, Action.USE}
        assert actions("this machine") == {Action.ATTACH}
        assert actions("loc") == {Action.ATTACH, Action.BACKUP, Action.USE, Action.WAKE}
        assert actions("box") == set(Action)
        assert actions("cloudy") == {Action.ATTACH, Action.BACKUP, Action.USE}
        assert actions("vm") == actions("ec2") == actions("own") == actions("odd") == remote
        assert actions("mine") == set()  # config.toml's runtimes are not the lockfile's


async def test_every_refusal_says_why_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    every_kind(tmp_path, monkeypatch, "http://127.0.0.1:9")
    async with opened() as roost:
        fleet = {a.id: a for a in await roost.sweep(health=False)}
        host, vm = roost.capabilities(fleet["this machine"]), roost.capabilities(fleet["vm"])

        assert Action.ATTACH in host and Action.ATTACH not in vm
        assert vm.refusal(Action.ATTACH) == (
            "vm is a gcp assistant: roost reaches it over HTTP only and has no terminal for it"
        )
        outside = "this machine is not in the Vellum lockfile"
        assert host.refusal(Action.USE) == f"{outside}: only its assistants can be the active one"
        assert host.refusal(Action.BACKUP) == f"{outside}: roost backs up Vellum assistants"
        assert host.refusal(Action.ATTACH) == ""
        for capabilities in (host, vm):
            for action in set(Action) - capabilities.actions:
                refusal = capabilities.refusal(action)
                assert refusal and "\n" not in refusal


async def test_a_cloud_roost_does_not_know_stays_its_text_and_is_reached_over_http_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Clouds that spell a kind roost gives other rows (this machine, a problem) name no kind.
    odd = ["apple-container", "local host", "lockfile"]
    entries = [{"assistantId": c, "cloud": c, "runtimeUrl": "http://127.0.0.1:9"} for c in odd]
    write_lockfile(tmp_path, monkeypatch, *entries)
    async with opened() as roost:
        fleet = {a.id: a for a in await roost.sweep(health=False)}
        for cloud in odd:
            assistant = fleet[cloud]
            assert assistant.kind == cloud and not isinstance(assistant.kind, AssistantKind)
            assert set(roost.capabilities(assistant).actions) == {Action.BACKUP, Action.USE}

    listed = roost_command("ps", "--json")
    assert [row["kind"] for row in json.loads(listed.stdout)] == ["local host", *odd]


def test_the_rows_of_sources_not_read_keep_their_kinds(tmp_path: Path) -> None:
    (tmp_path / ".vellum.lock.json").write_text("{")
    config = tmp_path / "roost-config"
    config.mkdir()
    gone = '[[docker.engines]]\nname = "gone"\nhost = "unix:///nonexistent/docker.sock"\n'
    (config / "config.toml").write_text(gone)

    listed = roost_command("ps", "--json", VELLUM_LOCKFILE_DIR=str(tmp_path))

    assert {row["id"]: row["kind"] for row in json.loads(listed.stdout)} == {
        "this machine": "local host",
        "lockfile": "lockfile",
        "engine gone": "docker engine",
    }


# --- choose, find, assistant ----------------------------------------------------------------


async def test_choose_takes_the_named_else_the_active_assistant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    every_kind(tmp_path, monkeypatch, "http://127.0.0.1:9")
    async with opened() as roost:
        assert (await roost.choose(None)).id == "vm"
        chosen = await roost.choose("box")
        assert (chosen.id, chosen.source) == ("box", Source.LOCKFILE)
        assert roost.assistant("box") == chosen
        assert roost.assistant("nobody") is None
        with pytest.raises(RoostError, match=r"no assistant 'local' in .*the choices are: loc, "):
            await roost.choose("local")  # this machine is no lockfile assistant


async def test_find_takes_any_row_this_machine_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    every_kind(tmp_path, monkeypatch, "http://127.0.0.1:9")
    async with opened() as roost:
        assert (await roost.find("local")).source is Source.HOST
        assert (await roost.find("odd")).kind == "apple-container"
        with pytest.raises(RoostError, match=r"^no assistant 'nobody'; the choices are: this "):
            await roost.find("nobody")


async def test_choose_without_a_lockfile_says_so() -> None:
    async with opened() as roost:
        with pytest.raises(RoostError, match="no Vellum assistants yet"):
            await roost.choose(None)


# --- backup ---------------------------------------------------------------------------------


async def test_backup_yields_the_jobs_snapshots_up_to_a_verified_file(
    vellum_peer: VellumPeer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = vellum_peer.runtime("ada")
    runtime.migrations.artifact = Artifact(100_000)
    write_lockfile(tmp_path, monkeypatch, {"assistantId": "ada", "runtimeUrl": runtime.base_url})
    async with opened() as roost:
        ada = await roost.choose("ada")
        jobs = await drain(roost.backup(ada))

    last = jobs[-1]
    assert len(jobs) > 1 and {job.id for job in jobs} == {last.id}
    assert (last.state, last.verified, last.sha256) == (
        JobState.COMPLETE,
        True,
        runtime.migrations.artifact.sha256,
    )
    assert (
        last.result_path is not None
        and last.result_path.parent == roost.context.paths.data_dir / "backups"
    )
    digest = hashlib.sha256(last.result_path.read_bytes()).hexdigest()
    assert digest == runtime.migrations.artifact.sha256


async def test_backup_of_an_assistant_without_a_runtime_is_refused_before_any_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A managed entry may come without a runtimeUrl (the platform's listing names none).
    write_lockfile(tmp_path, monkeypatch, {"assistantId": "cloudless", "cloud": "vellum"})
    async with opened() as roost:
        with pytest.raises(RoostError, match="cloudless has no runtime URL"):
            roost.backup(await roost.choose("cloudless"))
        with pytest.raises(RoostError, match="not in the Vellum lockfile"):
            roost.backup(await roost.find("local"))


async def test_a_local_assistant_found_asleep_is_woken_once_and_backed_up_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tmp_path / "calls"
    vellum = fake_vellum(tmp_path, f'echo "$@" >> {calls}\necho "Assistant started (pid 42)."')
    monkeypatch.setenv("PATH", f"{vellum.parent}{os.pathsep}{os.environ['PATH']}")
    with refused_url() as url:
        write_lockfile(
            tmp_path,
            monkeypatch,
            {"assistantId": "ada", "cloud": "local", "localUrl": url, "runtimeUrl": url},
        )
        async with opened() as roost:
            jobs = await drain(roost.backup(await roost.choose("ada"), tmp_path / "ada.vbundle"))

    assert calls.read_text() == "wake ada\n"
    assert jobs[-1].state is JobState.FAILED
    assert (jobs[-1].note or "").startswith("the first attempt found nothing listening; woke ada")


async def test_an_assistant_roost_cannot_wake_is_not_repaired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with refused_url() as url:
        write_lockfile(
            tmp_path, monkeypatch, {"assistantId": "vm", "cloud": "gcp", "runtimeUrl": url}
        )
        async with opened() as roost:
            jobs = await drain(roost.backup(await roost.choose("vm"), tmp_path / "vm.vbundle"))

    assert jobs[-1].state is JobState.FAILED and jobs[-1].unreachable
    assert len({job.id for job in jobs}) == 1 and jobs[-1].note is None


async def test_resume_refuses_a_job_whose_assistant_is_gone(
    vellum_peer: VellumPeer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = vellum_peer.runtime("ada")
    write_lockfile(tmp_path, monkeypatch, {"assistantId": "ada", "runtimeUrl": runtime.base_url})
    async with opened() as roost:
        [*_, job] = await drain(roost.backup(await roost.choose("ada"), tmp_path / "a.vbundle"))
        write_lockfile(
            tmp_path, monkeypatch, {"assistantId": "bob", "runtimeUrl": runtime.base_url}
        )
        await roost.sweep(health=False)

        with pytest.raises(RoostError, match="its assistant is gone"):
            roost.resume(job)


# --- lifecycle ------------------------------------------------------------------------------


async def test_wake_sleep_and_retire_are_refused_where_the_kind_has_no_containers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    every_kind(tmp_path, monkeypatch, "http://127.0.0.1:9")
    async with opened() as roost:
        vm, loc = await roost.choose("vm"), await roost.choose("loc")
        with pytest.raises(RoostError) as woken:
            roost.wake(vm)
        with pytest.raises(RoostError) as slept:
            roost.plan_sleep(loc)
        with pytest.raises(RoostError):
            roost.sleep(loc)
        with pytest.raises(RoostError):
            roost.plan_retire(vm)

    assert str(woken.value) == roost.capabilities(vm).refusal(Action.WAKE)
    assert str(slept.value) == roost.capabilities(loc).refusal(Action.SLEEP)


@pytest.mark.docker
async def test_wake_plan_sleep_and_sleep_drive_a_docker_assistants_containers(
    sandbox: Sandbox, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = sandbox.name()
    containers = sandbox.vellum_assistant(name)
    entry = {"assistantId": name, "cloud": "docker", "runtimeUrl": "http://127.0.0.1:9"}
    write_lockfile(tmp_path, monkeypatch, entry)
    async with opened(docker_engines=(EngineConfig("test", host=engine.host),)) as roost:
        assistant = await roost.choose(name)
        assert roost.engine(assistant).name == "test"
        assert roost.plan_sleep(assistant) == ()  # nothing runs yet

        woke = [str(step) for step in roost.wake(assistant)]
        assert woke == [
            f"{name}-{part}: started" for part in ("assistant", "gateway", "credential-executor")
        ]
        assert roost.plan_sleep(assistant) == (
            f"{name}-credential-executor",
            f"{name}-gateway",
            f"{name}-assistant",
        )
        assert not any(step.failed for step in roost.sleep(assistant))

    assert {sandbox.state(c) for c in containers.values()} == {"exited"}


# --- terminals ------------------------------------------------------------------------------


async def test_place_and_sessions_of_this_machine(tmux_server: TmuxServer) -> None:
    new_session(tmux_server, "work")
    async with opened() as roost:
        host = await roost.find("local")
        place = await roost.place(host)
        listing = await roost.sessions(place)
        first, second = roost.new_shell(host, place), roost.new_shell(host, place)

    assert isinstance(place, HostPlace)
    assert listing.state is TmuxState.RUNNING
    assert [session.name for session in listing.sessions] == ["work"]
    assert (first.title, second.title) == ("this machine · shell 1", "this machine · shell 2")


async def test_a_session_by_name_and_a_command_run_at_a_place(
    tmux_server: TmuxServer, tmp_path: Path
) -> None:
    new_session(tmux_server, "work")
    async with opened() as roost:
        place = await roost.place(await roost.find("local"))
        assert (await roost.session(place, "work")).name == "work"
        with pytest.raises(
            RoostError, match=r"no tmux session 'nope' \(the sessions there are: work\)"
        ):
            await roost.session(place, "nope")
        with (tmp_path / "out").open("wb") as out:
            result = await roost.attacher.run(
                place, ["sh", "-c", "echo hi; exit 3"], timeout=10, stdout=out
            )

    assert result.exit_code == 3 and (tmp_path / "out").read_bytes() == b"hi\n"


async def test_place_is_refused_for_an_assistant_reached_over_http_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    every_kind(tmp_path, monkeypatch, "http://127.0.0.1:9")
    async with opened() as roost:
        vm = await roost.choose("vm")
        with pytest.raises(RoostError, match="has no terminal for it"):
            await roost.place(vm)


# --- use ------------------------------------------------------------------------------------


async def test_use_makes_an_assistant_the_active_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    every_kind(tmp_path, monkeypatch, "http://127.0.0.1:9")
    async with opened() as roost:
        roost.use(await roost.choose("box"))
        assert read_lockfile(roost.context.vellum).active == "box"
        with pytest.raises(RoostError, match="not in the Vellum lockfile"):
            roost.use(await roost.find("local"))
        assert [a.id for a in await roost.sweep(health=False) if a.active] == ["box"]
