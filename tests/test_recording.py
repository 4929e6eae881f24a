"""Recordings: asciicast v2 files that parse back, replay to the same screen, stay private, stay
under their size limit (oldest first, never the file being written), and never raise into the
pane, even when the disk refuses a write (a real one: a file size limit, in a subprocess)."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.terminal.backend import TerminalSize
from services.terminal.emulator import Emulator
from services.terminal.recording import Recorder, list_recordings

CORPUS = Path(__file__).parent / "terminal" / "corpus"
WALL = datetime(2026, 11, 21, 10, 15, 0, tzinfo=UTC).timestamp()
SIZE = TerminalSize(80, 24)


class FakeClock:
    """A monotonic clock that moves only when told to, or by `tick` at every reading."""

    def __init__(self, now: float = 1000.0, tick: float = 0.0) -> None:
        self.now = now
        self.tick = tick

    def __call__(self) -> float:
        value = self.now
        self.now += self.tick
        return value


def recorder(
    directory: Path,
    *,
    name: str = "alpha/main",
    size: TerminalSize = SIZE,
    limit_bytes: int = 10 * 1024 * 1024,
    clock: FakeClock | None = None,
) -> Recorder:
    return Recorder(
        directory,
        name=name,
        size=size,
        title=f"{name} title",
        limit_bytes=limit_bytes,
        clock=clock or FakeClock(),
        wall_clock=lambda: WALL,
    )


def read_cast(path: Path) -> tuple[dict[str, Any], list[list[Any]]]:
    """The header and the events, each line parsed on its own as asciinema reads them."""
    lines = path.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    events = [json.loads(line) for line in lines[1:]]
    for event in events:
        assert isinstance(event, list) and len(event) == 3
        assert isinstance(event[0], float) and event[1] in {"o", "r", "i", "m"}
    return header, events


def output_of(events: list[list[Any]]) -> str:
    return "".join(data for _, code, data in events if code == "o")


def cast_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.cast"))


def disk_total(directory: Path) -> int:
    return sum(path.stat().st_size for path in cast_files(directory))


def test_header_and_events_parse_back(tmp_path: Path) -> None:
    directory = tmp_path / "recordings"
    chunks = [
        b'\x1b[1;31mHello\x1b[0m "quoted" back\\slash\r\n',
        b"tab\there\x00nul\x07bell\x7fdel ",
        "caf\u00e9 \u2500\u2500 \u6f22\u5b57 \U0001f600\n".encode(),
        b"\x1b]0;title\x07\x1b[?1049h\x1b[2J",
    ]
    rec = recorder(directory)
    for chunk in chunks:
        rec.output(chunk)
    rec.close()

    assert rec.path == directory / "20261121-101500-alpha-main.cast"
    assert cast_files(directory) == [rec.path]
    header, events = read_cast(rec.path)
    assert header == {
        "version": 2,
        "width": 80,
        "height": 24,
        "timestamp": int(WALL),
        "title": "alpha/main title",
    }
    assert [code for _, code, _ in events] == ["o"] * len(chunks)
    assert output_of(events) == b"".join(chunks).decode()
    assert rec.error is None


def test_utf8_split_across_chunks_comes_out_whole(tmp_path: Path) -> None:
    text = "\u00e9\u20ac\U0001f600\u6f22"
    data = text.encode()
    rec = recorder(tmp_path)
    for index in range(len(data)):
        rec.output(data[index : index + 1])
    rec.output(b"ok \xff\xfe bad \xe2\x82")  # invalid bytes, then a character cut short
    rec.close()

    assert rec.path is not None
    _, events = read_cast(rec.path)
    texts = [data for _, _, data in events]
    # A character's bytes never land in two events, and nothing is replaced by mistake.
    assert texts[: len(text)] == list(text)
    assert output_of(events) == text + "ok \ufffd\ufffd bad \ufffd"


def test_timestamps_are_relative_to_the_start_and_never_decrease(tmp_path: Path) -> None:
    clock = FakeClock(now=5000.0)
    rec = recorder(tmp_path, clock=clock)
    for step in (0.25, 0.0, 1.5, 0.000001, 3.0):
        clock.now += step
        rec.output(b"x")
    rec.close()

    assert rec.path is not None
    _, events = read_cast(rec.path)
    times = [time for time, _, _ in events]
    assert times == pytest.approx([0.25, 0.25, 1.75, 1.750001, 4.750001])
    assert times == sorted(times)


def test_resize_goes_in_the_header_before_output_and_in_an_event_after(tmp_path: Path) -> None:
    clock = FakeClock()
    rec = recorder(tmp_path, clock=clock)
    rec.resize(TerminalSize(100, 30))
    rec.output(b"a")
    clock.now += 1.0
    rec.resize(TerminalSize(120, 40))
    rec.resize(TerminalSize(120, 40))
    rec.output(b"b")
    rec.close()

    assert rec.path is not None
    header, events = read_cast(rec.path)
    assert (header["width"], header["height"]) == (100, 30)
    assert events == [[0.0, "o", "a"], [1.0, "r", "120x40"], [1.0, "o", "b"]]


def test_recordings_are_private(tmp_path: Path) -> None:
    fresh = tmp_path / "state" / "recordings"
    existing = tmp_path / "existing"
    existing.mkdir(mode=0o755)
    existing.chmod(0o755)
    old_umask = os.umask(0)
    try:
        for directory in (fresh, existing):
            rec = recorder(directory)
            rec.output(b"secret")
            rec.close()
            assert rec.path is not None
            assert stat.S_IMODE(rec.path.stat().st_mode) == 0o600
            assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    finally:
        os.umask(old_umask)


def test_no_file_for_a_pane_that_never_printed(tmp_path: Path) -> None:
    directory = tmp_path / "recordings"
    rec = recorder(directory)
    rec.output(b"")
    rec.resize(TerminalSize(90, 30))
    rec.close()
    rec.close()

    assert rec.path is None
    assert not directory.exists()


def test_output_reaches_the_disk_on_the_next_write_after_the_interval_and_on_close(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    rec = recorder(tmp_path, clock=clock)
    rec.output(b"first")
    assert rec.path is not None
    assert "first" not in rec.path.read_text()  # buffered: no write per chunk
    clock.now += 0.6
    rec.output(b"second")
    assert "first" in rec.path.read_text() and "second" in rec.path.read_text()
    rec.output(b"third")
    assert "third" not in rec.path.read_text()
    rec.close()
    assert output_of(read_cast(rec.path)[1]) == "firstsecondthird"


def test_names_are_sanitised_and_unique(tmp_path: Path) -> None:
    first, second = recorder(tmp_path, name="../x y:z"), recorder(tmp_path, name="../x y:z")
    nameless = recorder(tmp_path, name="/..")
    for rec in (first, second, nameless):
        rec.output(b"x")
        rec.close()

    assert [rec.path for rec in (first, second, nameless)] == [
        tmp_path / "20261121-101500-x-y-z.cast",
        tmp_path / "20261121-101500-x-y-z-2.cast",
        tmp_path / "20261121-101500-pane.cast",
    ]


def test_a_long_recording_continues_in_parts_each_with_its_own_header(tmp_path: Path) -> None:
    clock = FakeClock(tick=0.01)
    rec = recorder(tmp_path, limit_bytes=40_000, clock=clock)  # parts of 10,000 bytes
    sent = []
    for index in range(150):  # about 34,000 bytes: four parts, all kept
        if index == 100:
            rec.resize(TerminalSize(132, 43))
        chunk = f"line {index:04} " + "\u2500" * 60 + "\r\n"
        sent.append(chunk)
        rec.output(chunk.encode())
    rec.close()

    parts = [tmp_path / "20261121-101500-alpha-main.cast"]
    parts += [tmp_path / f"20261121-101500-alpha-main-part{n}.cast" for n in range(2, 5)]
    assert cast_files(tmp_path) == sorted(parts)
    assert rec.path == parts[-1]
    replayed = ""
    sizes = []
    for path in parts:
        assert path.stat().st_size <= 10_000 + 300  # a part ends within one event of its share
        header, events = read_cast(path)
        assert header["version"] == 2 and header["title"] == "alpha/main title"
        sizes.append((header["width"], header["height"]))
        # The first part's time starts with the recorder (one tick before its first output),
        # each later part's with its first event.
        assert events[0][0] == (0.01 if path == parts[0] else 0.0)
        replayed += output_of(events)
    assert sizes[0] == (80, 24) and sizes[-1] == (132, 43)
    assert replayed == "".join(sent)


def test_the_directory_stays_under_its_limit_oldest_first(tmp_path: Path) -> None:
    limit = 20_000
    old = []
    for index in range(8):
        path = tmp_path / f"2025-old-{index}.cast"
        path.write_text('{"version": 2, "width": 80, "height": 24}\n' + "x" * 1500)
        os.utime(path, (1_700_000_000 + index, 1_700_000_000 + index))
        old.append(path)
    unrelated = tmp_path / "notes.txt"
    unrelated.write_text("y" * 50_000)
    # Every event is flushed (the clock moves 1 s per reading), so sizes on disk are exact.
    rec = recorder(tmp_path, limit_bytes=limit, clock=FakeClock(tick=1.0))

    for index in range(400):
        rec.output(f"{index:05} {'z' * 200}\r\n".encode())
        assert rec.path is not None and rec.path.exists()
        assert disk_total(tmp_path) <= limit
        kept = [path.exists() for path in old]
        assert kept == sorted(kept)  # only ever the oldest are gone
    rec.close()

    assert rec.error is None
    assert not any(path.exists() for path in old)
    assert unrelated.stat().st_size == 50_000
    assert disk_total(tmp_path) <= limit
    assert rec.path is not None and rec.path.exists()


def test_a_file_alone_over_the_limit_is_kept_until_it_ends(tmp_path: Path) -> None:
    rec = recorder(tmp_path, limit_bytes=1000)
    rec.output(b"y" * 5000)
    first = rec.path
    assert first is not None and first.exists()
    rec.output(b"after")
    rec.close()

    assert not first.exists()
    assert rec.path is not None and cast_files(tmp_path) == [rec.path]
    assert output_of(read_cast(rec.path)[1]) == "after"
    assert disk_total(tmp_path) <= 1000


def test_finished_files_go_before_other_panes_current_ones(tmp_path: Path) -> None:
    clock = FakeClock(tick=1.0)
    panes = [recorder(tmp_path, name=f"pane{n}", limit_bytes=10_000, clock=clock) for n in range(5)]
    for pane in panes[:4]:
        for _ in range(9):
            pane.output(b"p" * 200)
    current = [pane.path for pane in panes[:4]]
    assert all(path is not None for path in current)
    for age, path in enumerate(current):
        assert path is not None
        os.utime(path, (1_800_000_000 + age, 1_800_000_000 + age))
    finished = tmp_path / "finished.cast"
    finished.write_text("f" * 2000)  # newer than every pane's file, but no one writes it
    os.utime(finished, (1_900_000_000, 1_900_000_000))

    for _ in range(100):
        panes[4].output(b"q" * 50)
        if not finished.exists():
            break
    assert not finished.exists()
    assert all(path is not None and path.exists() for path in current)
    assert disk_total(tmp_path) <= 10_000

    # Now only the panes' current files are left: the oldest of the others goes.
    for _ in range(100):
        panes[4].output(b"q" * 50)
        if current[0] is not None and not current[0].exists():
            break
    assert current[0] is not None and not current[0].exists()
    assert all(path is not None and path.exists() for path in current[1:])
    assert panes[4].path is not None and panes[4].path.exists()
    # The pane whose file went continues in a new part.
    panes[0].output(b"still here")
    assert panes[0].path == tmp_path / "20261121-101500-pane0-part2.cast"
    for pane in panes:
        pane.close()
    assert output_of(read_cast(tmp_path / "20261121-101500-pane0-part2.cast")[1]) == "still here"
    assert all(pane.error is None for pane in panes)


def test_a_directory_that_cannot_be_made_stops_recording_without_raising(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "state").write_text("a file where the state directory should be")
    rec = recorder(tmp_path / "state" / "recordings")
    with caplog.at_level(logging.WARNING, logger="services.terminal.recording"):
        rec.output(b"one")
        rec.output(b"two")
        rec.resize(TerminalSize(10, 10))
        rec.close()

    assert rec.error is not None and "cannot create a recording" in rec.error
    assert rec.path is None
    assert len(caplog.records) == 1 and rec.error in caplog.text


def test_a_directory_replaced_mid_recording_stops_it_and_keeps_what_was_written(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "recordings"
    rec = recorder(directory, limit_bytes=4000)  # parts of 1000 bytes
    rec.output(b"a" * 1200)  # the first part ends here
    first = rec.path
    assert first is not None
    directory.rename(tmp_path / "moved")
    directory.write_text("not a directory any more")
    rec.output(b"b")
    rec.output(b"c")
    rec.close()

    assert rec.error is not None
    assert rec.path == first
    assert output_of(read_cast(tmp_path / "moved" / first.name)[1]) == "a" * 1200


FULL_DISK = textwrap.dedent(
    """
    import json, resource, signal, sys
    from pathlib import Path
    from services.terminal.backend import TerminalSize
    from services.terminal.recording import Recorder

    rec = Recorder(
        Path(sys.argv[1]), name="full", size=TerminalSize(80, 24), title="full",
        limit_bytes=1 << 30,
    )
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failing write, not a killed process
    resource.setrlimit(resource.RLIMIT_FSIZE, (16384, resource.RLIM_INFINITY))
    for _ in range(256):
        rec.output(b"x" * 4096)
    rec.close()
    print(json.dumps({"error": rec.error, "path": str(rec.path)}))
    """
)


def test_a_write_the_disk_refuses_stops_recording_without_raising(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(tmp_path)],
        cwd=Path(__file__).parent.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["error"] is not None and "too large" in report["error"].lower()
    assert "not recording full" in result.stderr
    assert 0 < Path(report["path"]).stat().st_size <= 16384


@pytest.mark.parametrize(("stream", "chunk"), [("agent_tui", 997), ("cjk_emoji", 3)])
def test_a_replay_shows_the_same_screen(tmp_path: Path, stream: str, chunk: int) -> None:
    manifest = json.loads((CORPUS / "manifest.json").read_text())
    cols, rows = manifest[stream]["cols"], manifest[stream]["rows"]
    data = (CORPUS / f"{stream}.bin").read_bytes()
    rec = recorder(tmp_path, size=TerminalSize(cols, rows))
    live = Emulator(cols, rows)
    for start in range(0, len(data), chunk):
        rec.output(data[start : start + chunk])
        live.feed(data[start : start + chunk])
    rec.close()

    assert rec.path is not None
    header, events = read_cast(rec.path)
    replay = Emulator(header["width"], header["height"])
    for _, code, text in events:
        assert code == "o"
        replay.feed(text.encode())
    assert screen_state(replay) == screen_state(live)
    assert any(line for line in screen_state(live)[0])  # the stream drew something


def screen_state(screen: Emulator) -> tuple[Any, ...]:
    cells = [[screen.buffer[y][x] for x in range(screen.columns)] for y in range(screen.lines)]
    history = [[line[x] for x in range(screen.columns)] for line in screen.history]
    cursor = (screen.cursor.x, screen.cursor.y, screen.cursor.hidden)
    return cells, history, cursor, screen.alternate, screen.title


def test_list_recordings_newest_first(tmp_path: Path) -> None:
    assert list_recordings(tmp_path / "absent") == []
    older = Recorder(
        tmp_path,
        name="older",
        size=SIZE,
        title="Older",
        limit_bytes=1 << 20,
        wall_clock=lambda: WALL - 3600,
    )
    newer = recorder(tmp_path, name="newer")
    for rec in (older, newer):
        rec.output(b"x")
        rec.close()
    foreign = tmp_path / "foreign.cast"
    foreign.write_text("not json\n")
    os.utime(foreign, (WALL - 7200, WALL - 7200))
    (tmp_path / "other.txt").write_text("ignored")

    found = list_recordings(tmp_path)
    assert [item.path for item in found] == [newer.path, older.path, foreign]
    assert [item.title for item in found] == ["newer title", "Older", "foreign"]
    assert found[0].started_at == datetime.fromtimestamp(WALL, UTC)
    assert found[2].started_at == datetime.fromtimestamp(WALL - 7200, UTC)
    assert [item.size for item in found] == [item.path.stat().st_size for item in found]
