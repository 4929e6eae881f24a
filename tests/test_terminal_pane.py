"""The terminal pane with real programs in real PTYs: typing, echo, size, scrollback, the mouse,
the leave key, exits and failures, and a flood the pane must catch up with."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual.message import Message
from textual.pilot import Pilot

from services.core.config import Config
from services.core.mode import Mode
from services.terminal.attach import Attachment, HostPlace
from services.terminal.backend import TerminalBackend as Backend
from services.terminal.emulator import Emulator
from services.terminal.signals import SignalKind
from tests.pilot import make_app, wait_until
from tui.app import RoostApp
from tui.screens.panes import PanesScreen
from tui.terminal_pane import Connection, TerminalPane
from widgets.terminal_view import TerminalView


@contextlib.asynccontextmanager
async def terminal(
    argv: Sequence[str],
    *,
    size: tuple[int, int],
    scrollback: int = 1000,
    mode: Mode = Mode.DRIVE,
    message_hook: Callable[[Message], None] | None = None,
) -> AsyncIterator[tuple[Pilot[None], TerminalPane]]:
    """roost with a pane running `argv` (a `$ ` prompt for shells); `message_hook` sees every
    message each widget the message reaches gets."""
    app = make_app(
        environ={**os.environ, "PS1": "$ ", "ENV": ""},
        config=Config(terminal_scrollback=scrollback),
    )
    async with app.run_test(size=size, message_hook=message_hook) as pilot:
        await app.attaching.open_pane(Attachment("test", HostPlace(tuple(argv))), mode)
        pane = app.panes_screen.panes[-1]
        yield pilot, pane


def ended(pane: TerminalPane) -> bool:
    return pane.connection.over


def backend_of(pane: TerminalPane) -> Backend:
    assert pane.backend is not None
    return pane.backend


def shown(view: TerminalView) -> list[str]:
    """The view's rows as drawn (after the next repaint)."""
    return [view.render_line(y).text.rstrip() for y in range(view.size.height)]


def on_screen(view: TerminalView, text: str) -> bool:
    return any(text in row for row in shown(view))


async def run_in_shell(pilot: Pilot[Any], view: TerminalView, command: str, expect: str) -> None:
    await pilot.press(*command, "enter")
    await wait_until(pilot, lambda: on_screen(view, expect), f"{expect!r} on screen")


async def test_typing_into_a_shell_in_roost_shows_the_echo_and_leaving_returns() -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("t")
        await wait_until(pilot, lambda: isinstance(app.screen, PanesScreen), "the terminal")
        [pane] = app.panes_screen.panes
        await wait_until(pilot, lambda: pane.connection is Connection.LIVE, "a live shell")
        await pilot.press(*"echo roost-$((6*7))", "enter")
        await wait_until(pilot, lambda: on_screen(pane.view, "roost-42"), "the shell's answer")
        assert on_screen(pane.view, "echo roost-$((6*7))")  # the typed line, echoed
        await pilot.press("ctrl+right_square_bracket", "escape")  # the pane keys, then away
        await wait_until(pilot, lambda: not isinstance(app.screen, PanesScreen), "main screen")
        assert pane.connection is Connection.LIVE  # still there behind the main screen
        await pilot.press("v")
        await wait_until(pilot, lambda: app.screen is app.panes_screen, "the panes again")
        await pilot.press("enter", *"echo again", "enter")
        await wait_until(pilot, lambda: on_screen(pane.view, "again"), "the same shell")
        backend = backend_of(pane)
        await pilot.press("ctrl+right_square_bracket", "x", "y")  # close, confirmed
        await wait_until(pilot, lambda: not isinstance(app.screen, PanesScreen), "main screen")
        assert backend.exit_status is not None  # the shell ended with its pane
        assert not app.panes_screen.panes


async def test_keys_bound_with_priority_elsewhere_reach_the_program() -> None:
    async with terminal(["cat", "-v"], size=(60, 10)) as (pilot, pane):
        await wait_until(pilot, lambda: pane.connection is Connection.LIVE, "cat")
        await pilot.press("ctrl+p", "x", "up", "f5", "alt+b", "question_mark", "q", "enter")
        await wait_until(pilot, lambda: on_screen(pane.view, "^Px^[[A^[[15~^[b?q"), "the echo")
        assert isinstance(pilot.app.screen, PanesScreen)  # no palette, no help, no quit


async def test_the_program_sees_the_pane_size_and_its_changes() -> None:
    async with terminal(["sh"], size=(70, 20)) as (pilot, pane):
        view = pane.view
        await wait_until(pilot, lambda: pane.connection is Connection.LIVE, "sh")
        rows, columns = view.size.height, view.size.width
        await run_in_shell(pilot, view, "stty size", f"{rows} {columns}")
        await pilot.resize_terminal(90, 26)
        await wait_until(pilot, lambda: view.size.width == 90, "the new size")
        await wait_until(pilot, lambda: pane.emulator.columns == 90, "the debounced resize")
        await run_in_shell(pilot, view, "clear; stty size", f"{view.size.height} 90")
        assert view.size.height > rows


async def test_the_wheel_scrolls_back_and_typing_returns_to_the_bottom() -> None:
    async with terminal(["sh"], size=(60, 12)) as (pilot, pane):
        view = pane.view
        await wait_until(pilot, lambda: pane.connection is Connection.LIVE, "sh")
        await run_in_shell(pilot, view, "seq 1 100", "100")
        first = 102 - view.size.height  # the screen holds first..100 and the prompt
        assert shown(view)[0] == str(first)
        for _ in range(8):
            view.post_message(events.MouseScrollUp(view, 5, 5, 0, 0, 0, False, False, False))
        await wait_until(pilot, lambda: view.scrolled_back == 24, "24 lines back")
        rows = shown(view)  # above the screen: the command line and 1..first-1
        assert rows[0].startswith(str(first - 24)) and rows[0].endswith(f"↑ 24/{first}")
        assert rows[1:] == [str(n) for n in range(first - 23, first - 24 + view.size.height)]
        view.post_message(events.MouseScrollDown(view, 5, 5, 0, 0, 0, False, False, False))
        await wait_until(pilot, lambda: view.scrolled_back == 21, "three lines forward")
        await pilot.press("x")
        await wait_until(pilot, lambda: view.scrolled_back == 0, "back at the bottom")
        await wait_until(pilot, lambda: shown(view)[-1].endswith("$ x"), "the typed key")


async def test_the_wheel_goes_to_a_program_that_asked_for_the_mouse() -> None:
    program = ["sh", "-c", r"printf '\033[?1000h\033[?1006hready\n'; exec cat -v"]
    async with terminal(program, size=(60, 12)) as (pilot, pane):
        view = pane.view
        await wait_until(pilot, lambda: on_screen(view, "ready"), "the program")
        await wait_until(pilot, lambda: pane.emulator.mouse_reporting, "mouse mode")
        view.post_message(events.MouseScrollUp(view, 4, 2, 0, 0, 0, False, False, False))
        await pilot.press("enter")
        await wait_until(pilot, lambda: on_screen(view, "^[[<64;5;3M"), "a wheel report")
        assert view.scrolled_back == 0


async def test_a_program_that_exits_shows_its_code() -> None:
    async with terminal(["sh", "-c", "echo bye; exit 3"], size=(60, 8)) as (pilot, pane):
        await wait_until(pilot, lambda: ended(pane), "the end")
        assert pane.connection is Connection.EXITED and backend_of(pane).exit_status == 3
        assert "exited with code 3" in str(pane.status.render())
        assert on_screen(pane.view, "bye")


async def test_a_command_that_does_not_exist_is_a_message_not_a_crash() -> None:
    async with terminal(["no-such-command-here"], size=(60, 8)) as (pilot, pane):
        await wait_until(pilot, lambda: ended(pane), "the failure")
        assert pane.connection is Connection.FAILED
        assert pane.detail == "cannot run 'no-such-command-here': no such command"
        assert pane.detail in str(pane.status.render())
        await pilot.press("x")  # typing into a failed pane does nothing


async def test_origin_mode_then_a_row_or_a_position_query_loses_no_output() -> None:
    # `CSI ?6h CSI 5d` and `CSI ?6h CSI 6n` raised inside pyte: the rest of the read was lost.
    script = r"printf 'before\033[?6h\033[5dafter-vpa\033[6nafter-dsr\n'; exec cat"
    async with terminal(["sh", "-c", script], size=(60, 10)) as (pilot, pane):
        await wait_until(pilot, lambda: on_screen(pane.view, "after-vpaafter-dsr"), "the rest")
        assert shown(pane.view)[4].startswith("after-vpa")
        assert "display error" not in str(pane.status.render())


async def test_an_emulator_bug_is_logged_shown_and_the_output_keeps_flowing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_bell(self: Emulator) -> None:
        raise RuntimeError("a bug in the bell")

    monkeypatch.setattr(Emulator, "bell", broken_bell)
    script = r"printf 'one\a two\a three\n'; read line; echo later-$line; exec cat"
    async with terminal(["sh", "-c", script], size=(60, 10)) as (pilot, pane):
        await wait_until(pilot, lambda: on_screen(pane.view, "one two three"), "the same read")
        status = str(pane.status.render())
        assert "display errors: " in status and "details in the log" in status
        [record] = [r for r in caplog.records if r.name == "tui.terminal_pane"]
        assert record.exc_info is not None and "a bug in the bell" in caplog.text
        await pilot.press("x", "enter")
        await wait_until(pilot, lambda: on_screen(pane.view, "later-x"), "later output")
        assert pane.connection is Connection.LIVE


async def test_a_flood_is_caught_up_with_and_ends_on_the_right_screen(tmp_path: Path) -> None:
    flood = tmp_path / "flood.txt"
    lines = [f"line {n:06d} " + "lorem ipsum dolor sit amet " * 3 for n in range(120_000)]
    flood.write_text("\n".join(lines) + "\n")
    cat = shutil.which("cat")
    assert cat is not None
    behind: list[str] = []
    async with terminal([cat, str(flood)], size=(100, 20), scrollback=100) as (pilot, pane):

        def done() -> bool:
            status = str(pane.status.render())
            if "behind" in status:
                behind.append(status)
            return ended(pane) and pane.queued == 0

        await wait_until(pilot, done, "the whole flood on screen", within=120)
        assert behind, "the status line never said the pane was behind"
        assert backend_of(pane).exit_status == 0
        assert shown(pane.view)[-2] == lines[-1].rstrip()
        assert len(pane.emulator.history) == 100


async def test_typing_into_a_pane_while_another_floods_echoes_and_the_flood_catches_up(
    tmp_path: Path,
) -> None:
    """Typing comes first (the other pane's frames step aside), yet the flood never starves: it
    ends on its last line while keys keep coming."""
    flood = tmp_path / "flood.txt"
    lines = [f"line {n:06d} " + "lorem ipsum dolor sit amet " * 2 for n in range(120_000)]
    flood.write_text("\n".join(lines) + "\n")
    cat = shutil.which("cat")
    assert cat is not None
    async with terminal([cat, str(flood)], size=(160, 24), scrollback=100) as (pilot, flooding):
        app = pilot.app
        assert isinstance(app, RoostApp)
        await app.attaching.open_pane(Attachment("typing", HostPlace((cat,))), Mode.DRIVE)
        typing = app.panes_screen.panes[-1]
        app.panes_screen.grid = True
        await wait_until(pilot, lambda: typing.connection is Connection.LIVE, "cat running")
        behind_while_typing = False
        line = ""
        for _key in range(20_000):  # keys keep coming until the flood is all on screen
            if ended(flooding) and flooding.queued == 0:
                break
            behind_while_typing |= flooding.queued > 0
            line += "abcdefghijklmnopqrstuvwxyz"[len(line) % 26]
            await pilot.press(line[-1])
            await wait_until(pilot, partial(on_screen, typing.view, line), "the echo")
            if len(line) == 40:
                await pilot.press("enter")
                line = ""
        else:
            pytest.fail("the flood never caught up while keys kept coming")
        assert behind_while_typing, "the flood was over before the typing began"
        assert shown(flooding.view)[-2] == lines[-1].rstrip()


async def test_the_leave_key_is_remapped_from_config() -> None:
    app = make_app(config=Config(keys={"terminal.leave": "f12"}, terminal_shell="cat -v"))
    async with app.run_test(size=(80, 20)) as pilot:
        await pilot.press("t")
        await wait_until(pilot, lambda: isinstance(app.screen, PanesScreen), "the terminal")
        [pane] = app.panes_screen.panes
        await wait_until(pilot, lambda: pane.connection is Connection.LIVE, "cat")
        await pilot.press("ctrl+right_square_bracket", "enter")  # now just a key for cat
        await wait_until(pilot, lambda: on_screen(pane.view, "^]"), "the echo")
        await pilot.press("f12")
        await wait_until(pilot, lambda: app.focused is pane, "the pane keys")
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, PanesScreen), "leaving")


async def test_a_watching_pane_answers_no_query_and_sends_no_key() -> None:
    """The program asks for the device attributes (a terminal answers `ESC [ ? ... c`) and
    echoes whatever reaches it; only the key typed once driving may arrive."""
    program = ["sh", "-c", r"printf '\033[cready\n'; exec cat -v"]
    async with terminal(program, size=(60, 10), mode=Mode.WATCH) as (pilot, pane):
        view = pane.view
        await wait_until(pilot, lambda: on_screen(view, "ready"), "the program")
        await pilot.press("a", "enter")
        pane.switch_mode(Mode.DRIVE)  # a new shell: the same program, now driven
        await pilot.press("z", "enter")
        await wait_until(pilot, lambda: on_screen(view, "z"), "the driver's key")
        assert shown(view)[:3] == ["ready", "z", "z"]  # the echo and cat: no "a", no answer


async def test_a_shell_whose_tmux_history_cannot_be_read_scrolls_its_own() -> None:
    """As a container's shell does where the container has no tmux (it then runs bare)."""
    app = make_app(environ={**os.environ, "PS1": "$ ", "ENV": ""})
    async with app.run_test(size=(60, 12)) as pilot:
        attachment = Attachment("test", HostPlace(("sh",)), shell_session="no-such-session")
        await app.attaching.open_pane(attachment, Mode.DRIVE)
        [pane] = app.panes_screen.panes
        view = pane.view
        await wait_until(pilot, lambda: pane.connection is Connection.LIVE, "sh")
        await run_in_shell(pilot, view, "seq 1 100", "100")
        await pilot.press("ctrl+right_square_bracket", "pageup")
        await wait_until(pilot, lambda: view.scrolled_back > 0, "its own scrollback")
        assert view.archive is None
        assert "the pane's own scrollback (cannot read tmux's history" in pane.note


def reverse_of(view: TerminalView, y: int, text: str) -> bool | None:
    """Whether `text` is drawn in reverse video on row `y` of the view."""
    for segment in view.render_line(y):
        if text in segment.text:
            return bool(segment.style and segment.style.reverse)
    raise AssertionError(f"{text!r} is not on row {y}")


async def test_a_visual_bell_inverts_the_view_and_leaves_the_cells() -> None:
    """DECSCNM shows the whole screen inverted, as xterm does (vim's visual bell sets it and
    resets it); the cells keep their own reverse video."""
    async with terminal(["sh"], size=(60, 12)) as (pilot, pane):
        view = pane.view
        await wait_until(pilot, lambda: pane.connection is Connection.LIVE, "sh")
        await run_in_shell(pilot, view, r"printf '\033[7mREV\033[27m PLAIN\n'", "REV PLAIN")
        row = next(y for y, text in enumerate(shown(view)) if text == "REV PLAIN")
        await run_in_shell(pilot, view, r"printf '\033[?5h'; echo inverted", "inverted")
        await wait_until(pilot, lambda: reverse_of(view, row, "PLAIN") is True, "inverted")
        assert reverse_of(view, row, "REV") is False
        await run_in_shell(pilot, view, r"printf '\033[?5l'; echo normal", "normal")
        await wait_until(pilot, lambda: reverse_of(view, row, "PLAIN") is False, "normal")
        assert reverse_of(view, row, "REV") is True


@pytest.mark.parametrize("mode", [Mode.DRIVE, Mode.WATCH])
async def test_a_notification_and_bells_go_up_in_one_signals_message(mode: Mode) -> None:
    """What Claude Code sends when it waits for a permission: one message for the frame,
    whether the pane drives or only watches."""
    posted: dict[int, TerminalPane.Signals] = {}  # a message bubbles: the hook sees it often

    def hook(message: Message) -> None:
        if isinstance(message, TerminalPane.Signals):
            posted[id(message)] = message

    script = r"printf '\033]9;Claude needs your permission\007\007\007ready\n'; exec cat"
    async with terminal(["sh", "-c", script], size=(60, 8), mode=mode, message_hook=hook) as (
        pilot,
        pane,
    ):
        await wait_until(pilot, lambda: on_screen(pane.view, "ready"), "the output")
        await wait_until(pilot, lambda: bool(posted), "the signals")
        await pilot.pause()
        [message] = posted.values()
        assert message.pane is pane and message.attachment is pane.attachment
        assert [(signal.kind, signal.text) for signal in message.signals] == [
            (SignalKind.BELL, ""),
            (SignalKind.NOTIFICATION, "Claude needs your permission"),
        ]
        assert not on_screen(pane.view, "Claude")  # nothing of it is drawn
