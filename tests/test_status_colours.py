"""Every status colour reads on whatever it is drawn over, in every built-in theme (WCAG AA)."""

from __future__ import annotations

from rich.color import Color as RichColor
from textual.color import Color

from services.health.status import Bucket
from services.health.status import bucket as bucket_of
from tests.pilot import SIZE, make_app, wait_until
from tui.present import bucket_styles
from widgets.keyed_table import KeyedTable

AA = 4.5


def luminance(red: int, green: int, blue: int) -> float:
    """WCAG 2's relative luminance of an sRGB colour."""

    def linear(channel: int) -> float:
        value = channel / 255
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)


def ratio(first: tuple[int, int, int], second: tuple[int, int, int]) -> float:
    high, low = sorted((luminance(*first), luminance(*second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


async def test_every_status_colour_reaches_aa_contrast_in_every_built_in_theme() -> None:
    app = make_app()
    checked: list[str] = []

    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#assistants", KeyedTable)
        detail = app.screen.query_one("#detail-panel")
        await wait_until(pilot, lambda: bool(table.rows_shown), "the first row")
        for name in app.available_themes:
            app.theme = name
            await wait_until(pilot, lambda name=name: app.current_theme.name == name, name)  # type: ignore[misc]
            await pilot.pause()
            odd_row = table.get_component_rich_style("keyed-table--odd-row").bgcolor
            assert odd_row is not None
            backgrounds = {
                "table": table.background_colors[1],
                "odd row": Color.from_rich_color(odd_row),
                "detail panel": detail.background_colors[1],
            }
            styles = bucket_styles(app.current_theme)
            status = table.rows_shown[0].cells[3]  # this machine's, drawn in the theme's colours
            assert status.style == styles[bucket_of(status.plain[2:])]
            if any(colour.ansi is not None for colour in backgrounds.values()):
                # The terminal's own palette draws these, made for its own background.
                assert all(RichColor.parse(style).is_system_defined for style in styles.values())
                assert table.render_lines(table.region.reset_offset)  # Rich can draw them
                continue
            for bucket in Bucket:
                foreground = Color.parse(styles[bucket]).rgb
                for where, background in backgrounds.items():
                    contrast = ratio(foreground, background.rgb)
                    assert contrast >= AA, f"{name}: {bucket} on the {where}: {contrast:.2f}:1"
            checked.append(name)

    assert "textual-dark" in checked and "textual-light" in checked and len(checked) >= 19


async def test_the_cursor_row_is_drawn_in_the_cursors_colours() -> None:
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#assistants", KeyedTable)
        await wait_until(pilot, lambda: bool(table.rows_shown), "the first row")
        cursor = table.get_component_rich_style("keyed-table--cursor")
        line = table.render_line(1)
        colours = {
            segment.style.color for segment in line if segment.text.strip() and segment.style
        }
        assert colours == {cursor.color}
