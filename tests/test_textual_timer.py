"""tui/textual_timer.py: Textual's skipping timers, corrected, on a clock the test moves."""

from __future__ import annotations

import inspect

import pytest
import textual.timer
from textual import _time
from textual.timer import Timer

import tui.terminal_pane  # noqa: F401  # applies the correction, as the console does
from tui import textual_timer


class _Target:
    """Enough of a message target for a timer whose ticks the test intercepts."""


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def get_time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_the_installed_textual_still_counts_one_tick_too_many() -> None:
    """When this fails, Textual has fixed its count: drop tui/textual_timer.py."""
    assert "count = int((now - start) / _interval + 1)" in inspect.getsource(textual.timer)


def test_the_console_runs_the_corrected_timers() -> None:
    assert Timer._run is textual_timer._run


async def test_after_a_late_tick_the_next_comes_within_one_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = _Clock()
    monkeypatch.setattr(_time, "get_time", clock.get_time)
    monkeypatch.setattr(_time, "sleep", clock.sleep)
    monkeypatch.setattr(textual.timer, "sleep", clock.sleep)  # Textual's own binding of it
    target = _Target()
    timer = Timer(target, 1.0, repeat=3, skip=True)  # type: ignore[arg-type]
    ticks: list[float] = []

    async def tick(*, next_timer: float, count: int) -> None:
        ticks.append(clock.now)
        if len(ticks) == 1:
            clock.now += 2.5  # the first tick's work ran late, past two more ticks

    monkeypatch.setattr(timer, "_tick", tick)
    await timer._run()
    # Due at 1; its work ends at 3.5; the next due tick is at 4 (Textual waited until 5).
    assert ticks[:2] == [1.0, 4.0]
    assert clock.sleeps[1] == pytest.approx(0.5)
