"""A terminal's screen as a Textual widget: draws an emulated screen and turns input into bytes.

The view does no I/O. It is given a screen model (anything shaped like `TerminalScreen`,
such as roost's pyte-based emulator), draws it with the line API, and posts `Typed` with the
bytes a key, paste or mouse event should send and `Resized` when its size changes; whoever
owns the session delivers them.

Drawing is incremental: each screen line object has a serial number, its strip is built once
and cached under it, and `refresh_changes()` repaints only the rows whose line changed or
moved. A scrolling log therefore rebuilds one strip per new line, not the whole screen.
The mouse wheel scrolls the local scrollback unless the program asked for mouse reports; a
marker shows how far back the view is, and typing returns it to the bottom. Scrolling back past
the top of the model's history posts `HistoryWanted`: where the session keeps its history
elsewhere (tmux's, for a tmux client whose own screen has none) the owner hands it over as a
still `archive` model (`show_archive`), which the view scrolls through in the same way until it
is back at the bottom, where it follows the live model again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from typing import Any, ClassVar, Protocol

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import var
from textual.strip import Strip
from textual.widget import Widget

from widgets.terminal_keys import WHEEL_DOWN, WHEEL_UP, encode_key, encode_mouse, encode_paste

WHEEL_LINES = 3


class CursorLike(Protocol):
    @property
    def x(self) -> int: ...

    @property
    def y(self) -> int: ...

    @property
    def hidden(self) -> bool: ...


class ScreenRows(Protocol):
    """A screen's lines by row."""

    def get(self, y: int, /) -> Any:
        """Row `y`'s line (read as `line[x]`, with a `serial`), None outside the screen."""


class TerminalScreen(Protocol):
    """What the view reads from an emulator."""

    @property
    def columns(self) -> int: ...

    @property
    def lines(self) -> int: ...

    @property
    def cursor(self) -> CursorLike: ...

    @property
    def application_cursor(self) -> bool: ...

    @property
    def bracketed_paste(self) -> bool: ...

    @property
    def mouse_sgr(self) -> bool: ...

    @property
    def history_count(self) -> int:
        """Lines ever moved into `history` (also counts those since dropped off its far end)."""

    @property
    def buffer(self) -> ScreenRows: ...

    @property
    def history(self) -> Sequence[Any]: ...

    @property
    def mouse_reporting(self) -> bool: ...

    @property
    def reverse_screen(self) -> bool:
        """The whole screen is shown inverted (DECSCNM, a visual bell); the cells are not."""

    def take_dirty(self) -> set[int]: ...


_ANSI = ("black", "red", "green", "brown", "blue", "magenta", "cyan", "white")
_COLOURS: dict[str, str | None] = {"default": None}
_COLOURS.update({name: f"color({index})" for index, name in enumerate(_ANSI)})
_COLOURS.update({f"bright{name}": f"color({index + 8})" for index, name in enumerate(_ANSI)})
_COLOURS["yellow"] = "color(3)"
_COLOURS["brightyellow"] = "color(11)"


def _colour(value: str) -> str | None:
    known = _COLOURS.get(value, "")
    if known != "":
        return known
    if len(value) == 6:
        return f"#{value}"
    return None


_DATA = itemgetter(0)
_ATTRIBUTES = itemgetter(slice(1, None))
"""A cell's text and its attributes (the rest of its fields), as `cell.data` and `cell[1:]`."""


def cell_style(key: tuple[Any, ...]) -> Style:
    """A Rich style for a cell's attributes: pyte's fields after `data`, then `dim`."""
    fg, bg, bold, italics, underscore, strikethrough, reverse, blink, *rest = key
    return Style(
        color=_colour(fg),
        bgcolor=_colour(bg),
        bold=bold,
        dim=bool(rest and rest[0]),
        italic=italics,
        underline=underscore,
        strike=strikethrough,
        reverse=reverse,
        blink=blink,
    )


class TerminalView(Widget, can_focus=True):
    """Draws a `TerminalScreen`; posts `Typed` and `Resized`."""

    DEFAULT_CSS = """
    TerminalView {
        width: 1fr;
        height: 1fr;
    }
    """

    @dataclass
    class Typed(Message):
        """Bytes for the session: a key, a paste or a mouse report."""

        view: TerminalView
        data: bytes

    @dataclass
    class HistoryWanted(Message):
        """The user scrolled `lines` back past the top of the model's history."""

        view: TerminalView
        lines: int

    @dataclass
    class Resized(Message):
        """The view now shows `columns` x `rows` cells."""

        view: TerminalView
        columns: int
        rows: int

    scrolled_back: var[int] = var(0)
    """How many lines of scrollback the view shows above the screen (0: following live)."""

    _STYLE_CACHE_LIMIT: ClassVar[int] = 4096

    def __init__(
        self,
        screen: TerminalScreen,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.model = screen
        self._strips: dict[int, Strip] = {}
        self._styles: dict[tuple[Any, ...], Style] = {}
        self._painted: dict[int, tuple[int, int]] = {}
        """Row -> (line serial, cursor column or -1) as last drawn."""
        self._width = 0
        """The view's width as last drawn or resized (`size` costs a lookup on each call)."""
        self._history_seen = screen.history_count
        self._base: Style | None = None
        self.archive: TerminalScreen | None = None
        """A still copy of history kept elsewhere, shown while scrolled back (`show_archive`)."""
        self.still: TerminalScreen | None = None
        """A moment shown instead of the live model (`show_still`: rewind)."""
        self._inverted = screen.reverse_screen
        """The screen was drawn inverted (the strips and styles in the caches are)."""

    @property
    def shown(self) -> TerminalScreen:
        """The model drawn: a still moment, the archive while scrolled back through one, else
        the live one."""
        if self.still is not None:
            return self.still
        return self.archive if self.archive is not None and self.scrolled_back else self.model

    # -- drawing ---------------------------------------------------------------------------

    def refresh_changes(self) -> None:
        """Repaint the rows whose content, line or cursor changed since the last call."""
        model = self.model
        if model.reverse_screen != self._inverted:
            self._inverted = model.reverse_screen
            self._forget_drawing()
        changed = model.take_dirty()
        buffer = model.buffer
        for y in changed:
            line = buffer.get(y)
            if line is not None:
                self._strips.pop(line.serial, None)
        added = model.history_count - self._history_seen
        self._history_seen = model.history_count
        if self.archive is not None or self.still is not None:
            return  # nothing live is in view
        if self.scrolled_back and added:
            # Stay on the same lines while the program keeps writing below them.
            self.scrolled_back = min(self.scrolled_back + added, len(model.history))
            return
        width, height = self.size
        painted, row_key, cursor = self._painted, self._row_key, self._cursor()
        regions = [
            Region(0, row, width, 1)
            for row in range(height)
            if painted.get(row) != row_key(row, cursor)
        ]
        if regions:
            self.refresh(*regions)
        if len(self._strips) > 2 * height:
            self._prune(height)

    def watch_scrolled_back(self, back: int) -> None:
        if not back and self.archive is not None:
            self.archive = None  # back at the bottom: live again
            self._strips.clear()
        self._painted.clear()
        self.refresh()

    def show_archive(self, archive: TerminalScreen, lines: int) -> None:
        """Scroll `lines` back through `archive` (same size as the model: its history, then
        its screen), in place of the model's own history, until back at the bottom."""
        self.archive = archive
        self._strips.clear()
        self._painted.clear()
        self.scrolled_back = max(0, min(lines, len(archive.history)))
        if not self.scrolled_back:
            self.archive = None
        self.refresh()

    def show_still(self, screen: TerminalScreen | None) -> None:
        """Draw `screen`, a still moment (of a recording), instead of the live model, from the
        top of its screen; None goes back to the live model. The live model keeps changing
        meanwhile, unseen."""
        self.still = screen
        self.archive = None
        self.set_reactive(TerminalView.scrolled_back, 0)
        self._strips.clear()
        self._painted.clear()
        self.refresh()

    def _row_key(self, row: int, cursor: tuple[int, int] | None = None) -> tuple[int, int]:
        """What row `row` of the view shows: its line's serial and the cursor column on it
        (`cursor`: `_cursor()`, when the caller has it)."""
        line = self._line_at(row)
        serial = -1 if line is None else line.serial
        if serial >= 0 and serial not in self._strips:
            serial = -2 - serial  # cached strip dropped: content changed
        cursor_row, cursor_x = self._cursor() if cursor is None else cursor
        return serial, cursor_x if row == cursor_row else -1

    def _line_at(self, row: int) -> Any:
        model = self.shown
        back = self.scrolled_back
        if back:
            history = model.history
            if row < back:
                index = len(history) - back + row
                return history[index] if 0 <= index < len(history) else None
            row -= back
        return model.buffer.get(row) if row < model.lines else None

    def _cursor(self) -> tuple[int, int]:
        """The row and column of the cursor as drawn, (-1, -1) when it is not."""
        cursor = self.shown.cursor
        if self.scrolled_back or cursor.hidden or not self.has_focus:
            return -1, -1
        return cursor.y, cursor.x

    def render_lines(self, crop: Region) -> list[Strip]:
        self._width = self.size.width  # once for the rows Textual asks for: it costs
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        line = self._line_at(y)
        width = self._width
        base = self._base_style()
        serial = -1 if line is None else line.serial
        strip = self._strips.get(serial)  # kept at the view's width: a resize drops them
        if strip is None:
            if line is None:
                strip = Strip.blank(width, base)
            else:
                strip = self._strips[serial] = self._build(line).adjust_cell_length(width, base)
        cursor_row, cursor_x = self._cursor()
        if y != cursor_row:
            cursor_x = -1
        elif 0 <= cursor_x < width:
            strip = self._with_cursor(strip, line, cursor_x)
        if y == 0 and self.scrolled_back:
            strip = self._with_marker(strip, width)
        self._painted[y] = serial, cursor_x
        return strip

    def _build(self, line: Any) -> Strip:
        """One screen line as a strip: runs of equally styled cells become one segment (the
        second cell of a wide character adds no text)."""
        columns = self.shown.columns
        # A screen line is a list of exactly `columns` cells; others (the scrollback's, a line
        # from a wider screen) are read cell by cell.
        if not (isinstance(line, list) and len(line) == columns):
            line = [line[x] for x in range(columns)]
        style_of = self._style
        return Strip(
            [
                Segment(text, style_of(key))
                for key, run in groupby(line, _ATTRIBUTES)
                if (text := "".join(map(_DATA, run)))
            ]
        )

    def _base_style(self) -> Style:
        """The widget's own style, under every cell's: Textual computes `rich_style` from all
        the ancestors on each access, so it is kept until the styles change. Inverted while the
        screen is (xterm inverts the blank area too)."""
        if self._base is None:
            self._base = self.rich_style + (Style(reverse=True) if self._inverted else Style())
        return self._base

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._forget_drawing()

    def _forget_drawing(self) -> None:
        self._base = None
        self._styles.clear()
        self._strips.clear()
        self._painted.clear()

    def _style(self, key: tuple[Any, ...]) -> Style:
        """A cell's style over the widget's, made once per set of attributes."""
        style = self._styles.get(key)
        if style is None:
            if len(self._styles) > self._STYLE_CACHE_LIMIT:
                self._styles.clear()
            style = self._base_style() + cell_style(key)
            if self._inverted:
                style += Style(reverse=not style.reverse)
            self._styles[key] = style
        return style

    def _with_cursor(self, strip: Strip, line: Any, x: int) -> Strip:
        cell = None if line is None else line[x]
        data = cell.data if cell is not None and cell.data else " "
        style = self._style(cell[1:]) if cell is not None else self._base_style()
        cursor = Segment(data, style + Style(reverse=not style.reverse))
        right = x + max(1, cursor.cell_length)
        return Strip.join([strip.crop(0, x), Strip([cursor]), strip.crop(right)])

    def _with_marker(self, strip: Strip, width: int) -> Strip:
        marker = f" ↑ {self.scrolled_back}/{len(self.shown.history)} "
        if len(marker) >= width:
            return strip
        style = self._base_style() + Style(reverse=True, bold=True)
        return Strip.join([strip.crop(0, width - len(marker)), Strip([Segment(marker, style)])])

    def _prune(self, height: int) -> None:
        """Keep only the strips of the lines in view."""
        lines = (self._line_at(row) for row in range(height))
        keep = {line.serial for line in lines if line is not None}
        self._strips = {serial: strip for serial, strip in self._strips.items() if serial in keep}

    def on_resize(self, event: events.Resize) -> None:
        self._width = event.size.width
        self._painted.clear()
        self._strips.clear()
        self.refresh()  # Textual may have drawn the new size already: `_painted` must say so
        self.post_message(self.Resized(self, event.size.width, event.size.height))

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return self.model.columns

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self.model.lines

    def on_focus(self) -> None:
        self._painted.clear()
        self.refresh()

    def on_blur(self) -> None:
        self._painted.clear()
        self.refresh()

    # -- input -----------------------------------------------------------------------------

    def on_key(self, event: events.Key) -> None:
        event.stop()
        event.prevent_default()
        data = encode_key(
            event.key, event.character, application_cursor=self.model.application_cursor
        )
        if data:
            self.scrolled_back = 0
            self.post_message(self.Typed(self, data))

    def on_paste(self, event: events.Paste) -> None:
        event.stop()
        if event.text:
            self.scrolled_back = 0
            data = encode_paste(event.text, bracketed=self.model.bracketed_paste)
            self.post_message(self.Typed(self, data))

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self._wheel(event, WHEEL_UP)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        self._wheel(event, WHEEL_DOWN)

    def _wheel(self, event: events.MouseEvent, button: int) -> None:
        event.stop()
        if self.model.mouse_reporting and not self.scrolled_back:
            self._report(event, button, pressed=True)
            return
        self.scroll_history(WHEEL_LINES if button == WHEEL_UP else -WHEEL_LINES)

    def scroll_history(self, lines: int, *, ask_for_more: bool = True) -> None:
        """Scroll back (`lines` > 0) or forward through the scrollback, within its bounds;
        past the top of the live model's history, ask for more (`HistoryWanted`)."""
        top = len(self.shown.history)
        more = ask_for_more and self.archive is None
        if more and lines > 0 and self.scrolled_back + lines > top:
            self.post_message(self.HistoryWanted(self, lines))
        self.scrolled_back = max(0, min(self.scrolled_back + lines, top))

    def on_mouse_down(self, event: events.MouseDown) -> None:
        if self.model.mouse_reporting and not self.scrolled_back:
            event.stop()
            self._report(event, event.button - 1, pressed=True)

    def on_mouse_up(self, event: events.MouseUp) -> None:
        if self.model.mouse_reporting and not self.scrolled_back:
            event.stop()
            self._report(event, event.button - 1, pressed=False)

    def _report(self, event: events.MouseEvent, button: int, *, pressed: bool) -> None:
        if not 0 <= button <= 2 and button not in (WHEEL_UP, WHEEL_DOWN):
            return
        mods = (4 if event.shift else 0) | (8 if event.meta else 0) | (16 if event.ctrl else 0)
        data = encode_mouse(
            button, event.x, event.y, pressed=pressed, sgr=self.model.mouse_sgr, mods=mods
        )
        if data:
            self.post_message(self.Typed(self, data))
