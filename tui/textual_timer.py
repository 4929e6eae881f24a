"""A correction to Textual's interval timers (textual 8.2, `textual/timer.py`).

A timer that skips the ticks it missed (`skip=True`, the default, as every screen's update
timer is) counts one tick too many when it skips: after a late tick it waits one to two
intervals for the next, not up to one. A screen's update timer is paused while nothing changes,
so the first tick after a pause is always late, and whatever changes next waits up to 33 ms
instead of up to 17 to be drawn: the echo of a key typed soon after the last one, or after a
busy pane's repaint (tests/perf/bench_terminal.py: keypress to echo, idle, p95 20 ms -> 10).
`Timer._run` below is Textual's with that count corrected; drop this module once Textual
counts `int((now - start) / interval)` itself.
"""

from __future__ import annotations

from textual import _time
from textual.timer import EventTargetGone, Timer


async def _run(self: Timer) -> None:
    """Textual's `Timer._run`, skipping to the next tick due rather than the one after."""
    count = 0
    interval = self._interval
    await self._active.wait()
    start = _time.get_time()
    while self._repeat is None or count <= self._repeat:
        next_timer = start + ((count + 1) * interval)
        now = _time.get_time()
        if self._skip and next_timer < now:
            count = int((now - start) / interval)  # Textual adds 1: one tick too far
            continue
        await _time.sleep(max(0.0, next_timer - _time.get_time()))
        count += 1
        await self._active.wait()
        if self._reset:
            start = _time.get_time()
            count = 0
            self._reset = False
            continue
        try:
            await self._tick(next_timer=next_timer, count=count)
        except EventTargetGone:
            break


def correct_skipped_ticks() -> None:
    """Use the corrected `_run` for every timer started from now on."""
    Timer._run = _run  # type: ignore[method-assign]
