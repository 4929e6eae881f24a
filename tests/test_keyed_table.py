"""The table widget on its own: rows by key, the cursor following its key, keys and clicks."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult

from tests.pilot import wait_until
from widgets.keyed_table import Cell, Column, KeyedTable, Row


def rows(*names: str) -> list[Row]:
    return [Row(name, (Text(name), Text(f"{name}-kind"))) for name in names]


class TableApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.highlighted: list[str | None] = []
        self.headers: list[str] = []

    def compose(self) -> ComposeResult:
        yield KeyedTable((("NAME", "name"), ("KIND", "kind")))

    def on_keyed_table_row_highlighted(self, event: KeyedTable.RowHighlighted) -> None:
        self.highlighted.append(event.key)

    def on_keyed_table_header_selected(self, event: KeyedTable.HeaderSelected) -> None:
        self.headers.append(event.column)


async def test_the_cursor_follows_its_key_when_rows_change() -> None:
    app = TableApp()
    async with app.run_test(size=(40, 10)) as pilot:
        table = app.query_one(KeyedTable)
        table.focus()
        table.show_rows(rows("a", "b", "c"))
        await pilot.press("down", "down")
        assert table.selected_key == "c"

        table.show_rows(rows("c", "a"))
        assert table.selected_key == "c" and table.cursor_row == 0

        table.show_rows(rows("x", "y"))  # the key is gone: the cursor keeps its place
        assert table.selected_key == "x"
        await pilot.pause()
        assert app.highlighted[-1] == "x"


async def test_keys_move_the_cursor_and_clicks_select_rows_and_headers() -> None:
    app = TableApp()
    async with app.run_test(size=(40, 6)) as pilot:
        table = app.query_one(KeyedTable)
        table.focus()
        table.show_rows(rows(*(f"r{i:02d}" for i in range(30))))
        await pilot.press("end")
        assert table.selected_key == "r29"
        assert table.scroll_y > 0  # the cursor row was scrolled into view
        await pilot.press("home")
        assert table.selected_key == "r00" and table.scroll_y == 0

        await pilot.click(KeyedTable, offset=(1, 2))
        assert table.selected_key == "r01"
        await pilot.click(KeyedTable, offset=(8, 0))
        await pilot.pause()
        assert app.headers == ["kind"]


async def test_rows_draw_in_columns_as_wide_as_their_widest_cell() -> None:
    app = TableApp()
    async with app.run_test(size=(40, 6)):
        table = app.query_one(KeyedTable)
        table.show_rows(
            [
                Row("a", (Text("a-long-name"), Text("x", justify="right"))),
                Row("b", (Text("b"), Text("kind"))),
            ]
        )
        table.replace_rows([Row("b", (Text("b"), Text("wide-kind")))])

        lines = [table.render_line(y).text.rstrip() for y in range(3)]

    assert lines == [
        "NAME         KIND",
        "a-long-name          x",
        "b            wide-kind",
    ]


async def test_more_or_fewer_rows_of_the_same_widths_bring_or_drop_the_scrollbar() -> None:
    """Only the number of rows changes (no layout of the screen): the scrollbar still follows."""
    app = TableApp()
    async with app.run_test(size=(40, 10)) as pilot:
        table = app.query_one(KeyedTable)
        table.focus()
        few = [f"r{i:02d}" for i in range(3)]
        many = [f"r{i:02d}" for i in range(30)]
        table.show_rows(rows(*few))
        await pilot.pause()
        assert not table.show_vertical_scrollbar

        table.show_rows(rows(*many))
        await wait_until(pilot, lambda: table.show_vertical_scrollbar, "the scrollbar")
        await pilot.press("end")
        await wait_until(pilot, lambda: table.scroll_y == table.max_scroll_y > 0, "the end")
        assert table.rows_in_view[-1].key == "r29"

        table.show_rows(rows(*few))
        await wait_until(pilot, lambda: not table.show_vertical_scrollbar, "no scrollbar")
        assert table.scroll_y == 0 and [row.key for row in table.rows_in_view] == few


class AutoHeightApp(App[None]):
    CSS = "KeyedTable { height: auto; }"

    def compose(self) -> ComposeResult:
        yield KeyedTable((("NAME", "name"), ("KIND", "kind")))


async def test_a_table_as_high_as_its_rows_grows_and_shrinks_with_them() -> None:
    app = AutoHeightApp()
    async with app.run_test(size=(40, 20)) as pilot:
        table = app.query_one(KeyedTable)
        table.show_rows(rows("r1", "r2"))
        await wait_until(pilot, lambda: table.size.height == 3, "header and two rows")
        table.show_rows(rows("r1", "r2", "r3", "r4", "r5"))  # the same widths
        await wait_until(pilot, lambda: table.size.height == 6, "header and five rows")
        table.show_rows(rows("r1"))
        await wait_until(pilot, lambda: table.size.height == 2, "header and one row")


class CellApp(App[None]):
    def compose(self) -> ComposeResult:
        yield KeyedTable(
            (
                Column("NAME", "name", max_width=6),
                Column("STATUS", "status"),
                Column("N", "n"),
                Column("WIDE", "wide", max_width=5),
            )
        )


async def test_a_cell_draws_as_the_text_it_stands_for() -> None:
    """Cut, padded, justified, styled, wide or with a control character: each character on
    screen the same, in the same style."""
    contents = [
        ("a-long-name", "bold", "left"),
        ("● running", "#00ff00", "left"),
        ("12", "", "right"),
        ("漢字漢字", "italic red", "left"),
        ("bell\x07", "", "left"),
        ("", "dim", "right"),
    ]
    app = CellApp()
    async with app.run_test(size=(60, 8)):
        table = app.query_one(KeyedTable)
        drawn = []
        for kind in (Cell, Text):
            cells = [
                Cell(plain, style, justify)  # type: ignore[arg-type]
                if kind is Cell
                else Text(plain, style=style, justify=justify)  # type: ignore[arg-type]
                for plain, style, justify in contents
            ]
            table.show_rows([Row(str(i), tuple(cells[i : i + 4])) for i in range(3)])
            lines = [table.render_line(y) for y in range(1, 4)]
            drawn.append([[(c, s.style) for s in line for c in s.text] for line in lines])

    assert drawn[0] == drawn[1]


class NarrowApp(App[None]):
    def compose(self) -> ComposeResult:
        yield KeyedTable(
            (
                Column("NAME", "name"),
                Column("STATUS", "status", max_width=8),
                Column("SEEN", "seen", priority=1),
                Column("KIND", "kind", priority=2),
            )
        )


async def test_columns_give_way_by_priority_and_cells_keep_to_their_column() -> None:
    app = NarrowApp()
    async with app.run_test(size=(40, 6)) as pilot:
        table = app.query_one(KeyedTable)
        cells = (Text("alpha"), Text("exited (Exited (137) 3 seconds ago)"), Text("5s"))
        table.show_rows([Row("a", (*cells, Text("docker")))])
        await pilot.pause()
        assert table.columns_shown == ("name", "status", "seen", "kind")
        assert table.render_line(1).text.rstrip() == "alpha  exited …  5s    docker"

        await pilot.resize_terminal(26, 6)
        await wait_until(pilot, lambda: table.columns_shown == ("name", "status", "kind"), "fit")
        await pilot.resize_terminal(16, 6)
        await wait_until(pilot, lambda: table.columns_shown == ("name", "status"), "narrower")
        assert table.render_line(0).text.rstrip() == "NAME   STATUS"
        assert table.virtual_size.width <= 16

        await pilot.resize_terminal(30, 6)
        await wait_until(pilot, lambda: len(table.columns_shown) == 4, "all four")
        more = [Row(f"r{i}", (Text(f"row-{i}"), *cells[1:], Text("docker"))) for i in range(9)]
        table.show_rows(more)  # too many for the height: a scrollbar will take two columns
        assert "seen" not in table.columns_shown  # hidden first, to make room
        await pilot.pause()
        assert table.virtual_size.width <= table.scrollable_content_region.width


async def test_the_rows_in_view_are_those_under_the_header_where_it_is_scrolled() -> None:
    app = TableApp()
    async with app.run_test(size=(40, 6)) as pilot:
        table = app.query_one(KeyedTable)
        table.focus()
        table.show_rows(rows(*(f"r{i:02d}" for i in range(30))))
        await pilot.pause()
        height = table.size.height
        assert [row.key for row in table.rows_in_view] == [f"r{i:02d}" for i in range(height - 1)]
        await pilot.press("end")
        top = int(table.scroll_y)
        assert top > 0
        assert [row.key for row in table.rows_in_view][-1] == "r29"
        assert table.rows_in_view[0].key == f"r{top:02d}"
