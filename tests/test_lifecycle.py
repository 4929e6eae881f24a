"""Wake, sleep and retire of docker assistants against a real engine, and the retire plan alone.

Each test builds a Vellum-shaped assistant of its own (a uuid in every name): `<n>-assistant` on
the network `<n>-net`, the gateway and the credential executor sharing its network namespace as
the Vellum CLI runs them, and the CLI's named volumes. Everything a test creates is removed after
it, whatever happened. Skipped without an engine unless ROOST_REQUIRE_DOCKER is set.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from ptyprocess import PtyProcess
from textual.widgets import Input, RichLog

from services.core.config import Config, EngineConfig
from services.core.errors import RoostError
from services.docker.engines import Engine
from services.docker.lifecycle import (
    ALREADY_GONE,
    ALREADY_RUNNING,
    NO_SUCH_CONTAINER,
    NOT_RUNNING,
    REMOVED,
    STARTED,
    STOPPED,
    STOPPED_AND_REMOVED,
    UNPAUSED,
    ContainerFacts,
    Inventory,
    Kind,
    NetworkFacts,
    Outcome,
    Step,
    VolumeFacts,
    VolumeMount,
    inspect_retire,
    plan_retire,
    retire_docker,
    sleep_docker,
    sleep_plan,
    summarize,
    wake_docker,
    wake_local,
)
from services.roost import Roost
from tests.docker_fixtures import GONE, Sandbox
from tests.pilot import SIZE, make_app, static_text, table_names, wait_until
from tests.test_cli import ROOST, roost
from tests.test_docker_engine import IMAGE, LABEL
from tui.screens.confirm import ConfirmScreen, TypedConfirmScreen
from widgets.keyed_table import KeyedTable


def said(steps: list[Step]) -> list[tuple[str, Outcome, str]]:
    return [(step.subject, step.outcome, step.detail) for step in steps]


# --- Wake and sleep -------------------------------------------------------------------------


def test_wake_starts_assistant_gateway_executor_in_order_then_reports_them_running(
    engine: Engine, sandbox: Sandbox
) -> None:
    name = sandbox.name()
    containers = sandbox.vellum_assistant(name)

    steps = list(wake_docker(engine, name))

    assert said(steps) == [
        (f"{name}-assistant", Outcome.DONE, STARTED),
        (f"{name}-gateway", Outcome.DONE, STARTED),
        (f"{name}-credential-executor", Outcome.DONE, STARTED),
    ]
    assert {sandbox.state(c) for c in containers.values()} == {"running"}
    assert summarize(steps) == (
        f"started {name}-assistant, {name}-gateway, {name}-credential-executor"
    )

    again = list(wake_docker(engine, name))
    assert {(s.outcome, s.detail) for s in again} == {(Outcome.UNCHANGED, ALREADY_RUNNING)}
    assert summarize(again).startswith(f"already running: {name}-assistant, ")


def test_sleep_stops_in_reverse_order_and_a_stopped_assistant_is_not_an_error(
    engine: Engine, sandbox: Sandbox
) -> None:
    name = sandbox.name()
    containers = sandbox.vellum_assistant(name)
    list(wake_docker(engine, name))

    steps = list(sleep_docker(engine, name))

    assert said(steps) == [
        (f"{name}-credential-executor", Outcome.DONE, STOPPED),
        (f"{name}-gateway", Outcome.DONE, STOPPED),
        (f"{name}-assistant", Outcome.DONE, STOPPED),
    ]
    assert {sandbox.state(c) for c in containers.values()} == {"exited"}
    again = list(sleep_docker(engine, name))
    assert {(s.outcome, s.detail) for s in again} == {(Outcome.UNCHANGED, NOT_RUNNING)}


def test_a_missing_container_is_reported_not_an_error(engine: Engine, sandbox: Sandbox) -> None:
    name = sandbox.name()
    sandbox.vellum_assistant(name)["credential-executor"].remove()

    woken = list(wake_docker(engine, name))
    slept = list(sleep_docker(engine, name))

    assert said(woken)[-1] == (f"{name}-credential-executor", Outcome.ABSENT, NO_SUCH_CONTAINER)
    assert not any(step.failed for step in woken + slept)
    assert summarize(woken) == (
        f"started {name}-assistant, {name}-gateway; {NO_SUCH_CONTAINER}: {name}-credential-executor"
    )
    assert slept[0].subject == f"{name}-credential-executor"


def test_wake_stops_at_the_first_failure_with_the_engines_words(
    engine: Engine, sandbox: Sandbox
) -> None:
    """The gateway shares the assistant's network: once the assistant fails, nothing follows."""
    name = sandbox.name()
    sandbox.vellum_assistant(name)["assistant"].remove()
    sandbox.container(f"{name}-assistant", network=f"{name}-net", entrypoint=["/no/such/binary"])

    steps = list(wake_docker(engine, name))

    [failed] = steps
    assert (failed.subject, failed.outcome) == (f"{name}-assistant", Outcome.FAILED)
    assert "/no/such/binary" in failed.detail
    assert "\n" not in str(failed)


def test_a_paused_container_is_unpaused(engine: Engine, sandbox: Sandbox) -> None:
    name = sandbox.name()
    containers = sandbox.vellum_assistant(name)
    list(wake_docker(engine, name))
    containers["gateway"].pause()

    steps = list(wake_docker(engine, name))

    assert said(steps)[1] == (f"{name}-gateway", Outcome.DONE, UNPAUSED)
    assert sandbox.state(containers["gateway"]) == "running"


def test_labelled_containers_count_as_the_assistant_container(
    engine: Engine, sandbox: Sandbox
) -> None:
    name = sandbox.name()
    sandbox.vellum_assistant(name)
    extra = sandbox.container(f"{name}-sidecar", labels={LABEL: name})

    woken = list(wake_docker(engine, name))
    slept = list(sleep_docker(engine, name))

    assert [s.subject for s in woken] == [
        f"{name}-assistant",
        f"{name}-sidecar",
        f"{name}-gateway",
        f"{name}-credential-executor",
    ]
    assert [s.subject for s in slept] == [s.subject for s in reversed(woken)]
    assert sandbox.state(extra) == "exited"


def test_an_assistant_known_only_by_its_label_wakes_without_missing_vellum_containers(
    engine: Engine, sandbox: Sandbox
) -> None:
    name = sandbox.name()
    sandbox.container(name, labels={LABEL: name})

    assert said(list(wake_docker(engine, name))) == [(name, Outcome.DONE, STARTED)]
    assert said(list(sleep_docker(engine, name))) == [(name, Outcome.DONE, STOPPED)]


def test_an_unreachable_engine_is_one_failed_step_in_one_line() -> None:
    [step] = list(wake_docker(GONE, "alpha"))

    assert (step.kind, step.outcome) == (Kind.ENGINE, Outcome.FAILED)
    assert str(step) == "engine gone: no engine socket there"
    assert [str(s) for s in sleep_docker(GONE, "alpha")] == [str(step)]
    with pytest.raises(RoostError, match=r"^engine gone: no engine socket there$"):
        inspect_retire(GONE, "alpha")


# --- Retire ---------------------------------------------------------------------------------


def test_the_plan_names_the_vellum_resources_and_what_the_containers_mount(
    engine: Engine, sandbox: Sandbox
) -> None:
    name = sandbox.name()
    sandbox.vellum_assistant(name)
    sandbox.client.volumes.create(f"{name}-extra")
    sandbox.container(f"{name}-sidecar", labels={LABEL: name}, volumes={f"{name}-extra": "/x"})
    sandbox.client.volumes.create(f"{name}-labelled", labels={LABEL: name})
    bystander = sandbox.name()  # another assistant: same prefix, none of it may be planned
    sandbox.vellum_assistant(bystander)

    plan = inspect_retire(engine, name)

    assert [p.name for p in plan.containers] == [
        f"{name}-credential-executor",
        f"{name}-gateway",
        f"{name}-sidecar",
        f"{name}-assistant",
    ]
    assert [p.name for p in plan.networks] == [f"{name}-net"]
    assert [p.name for p in plan.volumes] == sorted(
        f"{name}-{suffix}"
        for suffix in ("workspace", "socket", "gateway-sec", "ces-sec", "extra", "labelled")
    )
    assert not plan.kept
    why = {p.name: p.why for p in plan.removals}
    assert why[f"{name}-extra"] == f"mounted by {name}-sidecar at /x"
    assert why[f"{name}-workspace"] == (
        f"the Vellum CLI's volume for it; mounted by {name}-gateway at /workspace; "
        f"mounted by {name}-assistant at /workspace"
    )
    assert why[f"{name}-sidecar"] == f"labelled {LABEL}={name}"
    assert plan.describe()[0] == (
        f"remove container {name}-credential-executor "
        "(the Vellum CLI's credential executor container)"
    )


def test_retire_removes_exactly_the_plan(engine: Engine, sandbox: Sandbox) -> None:
    name = sandbox.name()
    sandbox.vellum_assistant(name)
    list(wake_docker(engine, name))
    bystander = sandbox.name()
    sandbox.vellum_assistant(bystander)
    plan = inspect_retire(engine, name)

    steps = list(retire_docker(plan))

    assert said(steps) == [
        (f"{name}-credential-executor", Outcome.DONE, STOPPED_AND_REMOVED),
        (f"{name}-gateway", Outcome.DONE, STOPPED_AND_REMOVED),
        (f"{name}-assistant", Outcome.DONE, STOPPED_AND_REMOVED),
        (f"{name}-net", Outcome.DONE, REMOVED),
        *((p.name, Outcome.DONE, REMOVED) for p in plan.volumes),
    ]
    for planned in plan.removals:
        assert not sandbox.exists(planned.kind, planned.name), planned
    assert inspect_retire(engine, name).empty
    assert inspect_retire(engine, bystander).removals  # untouched: still all there
    assert sandbox.exists(Kind.CONTAINER, f"{bystander}-assistant")


def test_retire_keeps_what_another_container_uses_and_never_touches_a_newcomer(
    engine: Engine, sandbox: Sandbox
) -> None:
    name = sandbox.name()
    containers = sandbox.vellum_assistant(name)
    other = sandbox.name()
    sandbox.container(other, volumes={f"{name}-workspace": "/borrowed"}, network=f"{name}-net")
    plan = inspect_retire(engine, name)
    assert {(p.kind, p.name, p.why) for p in plan.kept} == {
        (Kind.NETWORK, f"{name}-net", f"also used by {other}"),
        (Kind.VOLUME, f"{name}-workspace", f"also used by {other}"),
    }
    # After planning, the gateway is replaced by a new container of the same name: not planned.
    containers["gateway"].remove()
    newcomer = sandbox.container(
        f"{name}-gateway", network=f"container:{containers['assistant'].id}"
    )

    steps = list(retire_docker(plan))

    assert said(steps)[1] == (f"{name}-gateway", Outcome.ABSENT, ALREADY_GONE)
    assert sandbox.exists(Kind.CONTAINER, f"{name}-gateway")
    newcomer.reload()  # still there, the very same container
    assert sandbox.exists(Kind.NETWORK, f"{name}-net")
    assert sandbox.exists(Kind.VOLUME, f"{name}-workspace")
    assert not sandbox.exists(Kind.VOLUME, f"{name}-socket")


def test_a_refused_removal_is_one_line_and_the_rest_goes_on(
    engine: Engine, sandbox: Sandbox
) -> None:
    name = sandbox.name()
    sandbox.vellum_assistant(name)
    plan = inspect_retire(engine, name)
    # Something outside the plan starts using a planned volume after the plan was made.
    sandbox.container(sandbox.name(), volumes={f"{name}-ces-sec": "/late"})

    steps = list(retire_docker(plan))

    [refused] = [s for s in steps if s.failed]
    assert refused.subject == f"{name}-ces-sec"
    assert "volume is in use" in refused.detail
    assert "\n" not in refused.detail
    assert len(refused.detail) < 120  # the container's long id is shortened
    assert not sandbox.exists(Kind.VOLUME, f"{name}-gateway-sec")


def test_retire_on_an_unreachable_engine_is_one_failed_step() -> None:
    plan = plan_retire(
        GONE, "alpha", Inventory(containers=(ContainerFacts("id1", "alpha", "exited"),))
    )

    assert [str(step) for step in retire_docker(plan)] == ["engine gone: no engine socket there"]


# --- The plan alone (no engine) -------------------------------------------------------------


def facts(name: str, *, labels: dict[str, str] | None = None, **mounts: str) -> ContainerFacts:
    return ContainerFacts(
        id=f"id-{name}",
        name=name,
        state="exited",
        labels=labels or {},
        mounts=tuple(VolumeMount(volume, path) for path, volume in mounts.items()),
    )


def test_the_plan_includes_the_legacy_container_and_nothing_of_similar_names() -> None:
    inventory = Inventory(
        containers=(
            facts("alpha"),
            facts("alpha-assistant"),
            facts("alphabet-assistant"),
            facts("beta-assistant", labels={LABEL: "beta"}),
        ),
        networks=(NetworkFacts("n1", "alpha-net"), NetworkFacts("n2", "alpha-network")),
        volumes=(
            VolumeFacts("alpha-workspace"),
            VolumeFacts("alpha-data"),
            VolumeFacts("alpha-workspace-old"),
            VolumeFacts("alphabet-workspace"),
        ),
    )

    plan = plan_retire(GONE, "alpha", inventory)

    assert [(p.name, p.id) for p in plan.containers] == [
        ("alpha-assistant", "id-alpha-assistant"),
        ("alpha", "id-alpha"),
    ]
    assert plan.containers[1].why == "the Vellum CLI's legacy single container"
    assert [p.name for p in plan.networks] == ["alpha-net"]
    assert [p.name for p in plan.volumes] == ["alpha-data", "alpha-workspace"]


def test_an_empty_plan_for_an_assistant_with_nothing_left() -> None:
    plan = plan_retire(GONE, "alpha", Inventory(containers=(facts("beta-assistant"),)))

    assert plan.empty
    assert plan.describe() == []


# --- Local assistants -----------------------------------------------------------------------


def fake_vellum(tmp_path: Path, script: str) -> Path:
    """A stand-in for the Vellum CLI (a Node program not installed here): a shell script."""
    path = tmp_path / "bin" / "vellum"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"#!/bin/sh\n{script}\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_wake_local_runs_vellum_wake_and_reports_its_last_line(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    vellum = fake_vellum(
        tmp_path, f'echo "$@" >> {calls}\necho "Assistant already running (pid 7)."\necho'
    )

    [step] = list(wake_local("alpha", str(vellum)))

    assert calls.read_text() == "wake alpha\n"
    assert (step.kind, step.outcome) == (Kind.DAEMON, Outcome.DONE)
    assert str(step) == "alpha: `vellum wake alpha`: Assistant already running (pid 7)."


def test_wake_local_failures_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failing = fake_vellum(tmp_path, 'echo "Error: the assistant exited during startup" >&2\nexit 1')
    [failed] = list(wake_local("alpha", str(failing)))
    assert str(failed) == (
        "alpha: `vellum wake alpha` failed (exit 1): Error: the assistant exited during startup"
    )

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    [missing] = list(wake_local("alpha"))
    assert missing.failed
    assert "run `vellum wake alpha`" in missing.detail

    [flag] = list(wake_local("--watch", str(failing)))
    assert flag.failed


# --- The command line -----------------------------------------------------------------------


def lockfile_with(tmp_path: Path, name: str, cloud: str) -> dict[str, str]:
    """A Vellum lockfile listing `name`; the environment that points roost at it."""
    entry = {"assistantId": name, "cloud": cloud, "runtimeUrl": "http://127.0.0.1:9"}
    (tmp_path / ".vellum.lock.json").write_text(json.dumps({"assistants": [entry]}))
    return {"VELLUM_LOCKFILE_DIR": str(tmp_path)}


def test_roost_wake_and_sleep_drive_the_containers(sandbox: Sandbox, tmp_path: Path) -> None:
    name = sandbox.name()
    containers = sandbox.vellum_assistant(name)
    env = lockfile_with(tmp_path, name, "docker")

    woke = roost("wake", name, **env)
    assert woke.returncode == 0, woke.stderr
    assert woke.stdout.splitlines() == [
        f"{name}-assistant: started",
        f"{name}-gateway: started",
        f"{name}-credential-executor: started",
    ]
    assert all(sandbox.state(c) == "running" for c in containers.values())

    refused = roost("sleep", name, **env)  # no terminal to ask at, and no --yes
    assert refused.returncode == 1
    assert "add --yes" in refused.stderr
    assert sandbox.state(containers["assistant"]) == "running"

    slept = roost("sleep", name, "--yes", **env)
    assert slept.returncode == 0, slept.stderr
    assert slept.stdout.splitlines()[0] == f"{name}-credential-executor: stopped"
    assert all(sandbox.state(c) == "exited" for c in containers.values())


def test_roost_sleep_asks_naming_only_what_runs_and_a_no_stops_nothing(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    name = sandbox.name()
    containers = sandbox.vellum_assistant(name)
    containers["assistant"].start()
    containers["gateway"].start()  # the credential executor stays stopped: not named
    env = {**os.environ, **lockfile_with(tmp_path, name, "docker")}
    process = PtyProcess.spawn([ROOST, "sleep", name], env=env, dimensions=(24, 80))
    output = b""
    try:
        while b"[y/N] " not in output:
            output += process.read(4096)
        process.write(b"n\r")
        with contextlib.suppress(EOFError):
            while True:
                output += process.read(4096)
        process.wait()
    finally:
        if process.isalive():
            process.terminate(force=True)

    text = output.decode()
    assert f"Stop {name}-gateway, {name}-assistant on engine " in text
    assert "credential-executor" not in text
    assert "Nothing stopped." in text and process.exitstatus == 1
    assert sandbox.state(containers["assistant"]) == "running"


def test_roost_wake_explains_kinds_it_cannot_wake(tmp_path: Path) -> None:
    result = roost("wake", "cloudy", **lockfile_with(tmp_path, "cloudy", "vellum"))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "roost: cloudy is a vellum assistant: roost wakes docker and local ones"
    )


# --- The keys on the main screen ------------------------------------------------------------


async def test_wake_sleep_and_retire_from_the_main_screen(
    sandbox: Sandbox, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = sandbox.name()
    containers = sandbox.vellum_assistant(name)
    for variable, value in lockfile_with(tmp_path, name, "docker").items():
        monkeypatch.setenv(variable, value)
    config = Config(docker_engines=(EngineConfig("test", host=engine.host),))
    app = make_app(config=config)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: name in table_names(app), "the assistant's row")
        app.screen.query_one("#assistants", KeyedTable).move_cursor(table_names(app).index(name))

        await pilot.press("e", "W")  # with the events panel shown
        await wait_until(
            pilot, lambda: all(sandbox.state(c) == "running" for c in containers.values()), "woken"
        )
        await wait_until(
            pilot, lambda: f"{name}-credential-executor: started" in events(app), "events"
        )

        # The wake is under way until the fleet shows what it left; then Z asks, once the
        # engine has said which containers run.
        await wait_until(pilot, lambda: not app.snapshot.actions, "the wake over")
        await pilot.press("Z")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        await pilot.press("n")
        assert sandbox.state(containers["assistant"]) == "running"
        await pilot.press("Z")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "asked again")
        await pilot.press("y")
        await wait_until(
            pilot, lambda: sandbox.state(containers["assistant"]) == "exited", "asleep"
        )

        await pilot.press("X")
        await wait_until(pilot, lambda: isinstance(app.screen, TypedConfirmScreen), "the plan")
        dialog = static_text(app, "TypedConfirmScreen Static")
        assert f"{name}-assistant" in dialog and "This removes, for good:" in dialog
        await pilot.press(*"wrong", "enter")
        assert isinstance(app.screen, TypedConfirmScreen)  # not the name: nothing happens
        app.screen.query_one(Input).value = ""
        await pilot.press(*name, "enter")
        await wait_until(
            pilot, lambda: not sandbox.exists(Kind.CONTAINER, f"{name}-assistant"), "retired"
        )
        assert not sandbox.exists(Kind.NETWORK, f"{name}-net")
        assert not sandbox.exists(Kind.VOLUME, f"{name}-workspace")


def events(app: Any) -> str:
    log = app.main_screen.query_one("#events", RichLog)
    return "\n".join(strip.text for strip in log.lines)


SLOW_STOPPER = ["sh", "-c", 'trap "sleep 2; exit 0" TERM; sleep 3600 & wait']
"""Takes 2 s to stop: long enough to watch the stop under way and press Z again."""


def test_the_sleep_plan_names_only_the_containers_there_and_running(
    engine: Engine, sandbox: Sandbox
) -> None:
    labelled = sandbox.name()
    sandbox.container(labelled, labels={LABEL: labelled}).start()
    vellum = sandbox.name()
    containers = sandbox.vellum_assistant(vellum)
    containers["assistant"].start()

    assert sleep_plan(engine, labelled) == (labelled,)  # no `<name>-assistant` that is not there
    assert sleep_plan(engine, vellum) == (f"{vellum}-assistant",)  # the others are stopped
    with pytest.raises(RoostError, match=r"^engine gone: "):
        sleep_plan(GONE, labelled)


async def test_z_on_a_labelled_assistant_stops_it_once_shows_progress_and_then_sleep(
    sandbox: Sandbox, engine: Engine
) -> None:
    name = sandbox.name()
    container = sandbox.client.containers.create(
        IMAGE, SLOW_STOPPER, name=name, labels={LABEL: name}, network_mode="none"
    )
    container.start()
    config = Config(docker_engines=(EngineConfig("test", host=engine.host),))
    app = make_app(config=config)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#assistants", KeyedTable)

        def status() -> str:
            return table.rows_shown[table_names(app).index(name)].cells[3].plain

        await wait_until(pilot, lambda: name in table_names(app), "the assistant's row")
        table.move_cursor(table_names(app).index(name))
        await pilot.press("e", "Z")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        question = static_text(app, "ConfirmScreen Static")
        assert f"Stop {name}?" in question and f"{name}-" not in question  # only what exists

        await pilot.press("y")
        await wait_until(pilot, lambda: status() == "▲ stopping…", "the stop under way")
        assert f"{name}: stopping…" in events(app)
        await pilot.press("Z")  # again, while it stops
        assert not isinstance(app.screen, ConfirmScreen)
        assert f"already stopping {name}" in [n.message for n in app._notifications]

        await wait_until(pilot, lambda: status() == "◌ sleeping", "asleep", within=20)
        assert sandbox.state(container) == "exited"
        assert events(app).count(f"{name}: stopped") == 1
        assert "Exited (0)" in static_text(app, "#detail")  # the exit code, in the detail

        await pilot.press("Z")  # nothing runs any more: nothing to ask about
        await wait_until(
            pilot,
            lambda: f"Nothing of {name} is running." in [n.message for n in app._notifications],
            "the answer",
        )
        assert not isinstance(app.screen, ConfirmScreen)


async def test_sleep_and_retire_failures_are_events_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable, value in lockfile_with(tmp_path, "ada", "docker").items():
        monkeypatch.setenv(variable, value)
    config = Config(docker_engines=(EngineConfig("gone", host=GONE.host),))
    app = make_app(config=config)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "ada" in table_names(app), "the assistant's row")
        app.screen.query_one("#assistants", KeyedTable).move_cursor(table_names(app).index("ada"))
        await pilot.press("e")  # the events panel

        for key, action in (("Z", "sleep"), ("X", "retire")):
            await pilot.press(key)
            failed = f"ada: {action} failed: "
            await wait_until(pilot, lambda failed=failed: failed in events(app), action)  # type: ignore[misc]
            assert "unreachable: gone" in events(app)


async def test_an_unexpected_error_ends_the_action_and_frees_the_assistant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable, value in lockfile_with(tmp_path, "ada", "docker").items():
        monkeypatch.setenv(variable, value)

    def broken(*_: object) -> None:
        raise RuntimeError("a bug")  # stands for any bug below the worker

    monkeypatch.setattr(Roost, "engine", broken)
    app = make_app(config=Config(docker_engines=(EngineConfig("gone", host=GONE.host),)))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "ada" in table_names(app), "the assistant's row")
        app.screen.query_one("#assistants", KeyedTable).move_cursor(table_names(app).index("ada"))
        await pilot.press("e")

        def failures() -> int:
            return events(app).count("ada: sleep failed: internal error")

        for attempt in (1, 2):  # the first one left nothing busy behind
            await pilot.press("Z")
            await wait_until(pilot, lambda attempt=attempt: failures() == attempt, "failed")  # type: ignore[misc]
        assert not any("already" in n.message for n in app._notifications)
