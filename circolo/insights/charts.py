"""Dashboard charts drawn on the server as SVG with pygal: no script, no network, no JS library."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import pygal
from django.utils import formats
from django.utils.functional import Promise
from pygal.style import Style

# Matches app.css (accent colour, system fonts) so the chart looks like the rest of the page.
_CHART_STYLE = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#1d1d1f",
    foreground_strong="#1d1d1f",
    foreground_subtle="#e3e3e0",
    colors=("#0f766e",),
    font_family='system-ui, -apple-system, "Segoe UI", "Noto Sans", "Noto Sans CJK SC", sans-serif',
    label_font_size=12,
    major_label_font_size=12,
    title_font_size=15,
    opacity=".25",
    opacity_hover=".35",
)


@dataclass(frozen=True)
class SvgChart:
    """A rendered chart: the SVG as a data URI for an <img>, plus its data for a table fallback."""

    title: str
    description: str
    data_uri: str
    rows: list[tuple[dt.date, int]]


def _label_every(days: int) -> int:
    """Show about seven date labels whatever the range, so they never overlap."""
    return max(1, days // 7)


def daily_series_chart(
    *,
    series: Sequence[tuple[dt.date, int]],
    title: str | Promise,
    description: str | Promise,
    value_label: str | Promise,
) -> SvgChart:
    """One value per day as a filled line: an SVG with a <title>, and the rows for a table."""
    rows = [(day, int(value)) for day, value in series]
    chart = pygal.Line(
        style=_CHART_STYLE,
        js=[],  # pygal's default loads tooltips from the internet; the page must work offline
        width=960,
        height=300,
        title=str(title),
        show_legend=False,
        fill=True,
        show_dots=len(rows) <= 31,
        dots_size=2,
        stroke_style={"width": 2},
        show_minor_x_labels=False,
        x_labels_major_every=_label_every(len(rows)),
        truncate_label=-1,
        min_scale=2,
        max_scale=6,
        include_x_axis=True,
        print_values=False,
        no_data_text=str(value_label),
        margin=8,
        spacing=12,
    )
    every = _label_every(len(rows))
    # Only every `every`-th label is drawn (the major ones); formatting the others is waste.
    chart.x_labels = [
        formats.date_format(day, "MONTH_DAY_FORMAT") if index % every == 0 else ""
        for index, (day, _value) in enumerate(rows)
    ]
    chart.add(str(value_label), [value for _, value in rows])
    svg: bytes = chart.render()
    encoded = base64.b64encode(svg).decode("ascii")
    return SvgChart(
        title=str(title),
        description=str(description),
        data_uri=f"data:image/svg+xml;base64,{encoded}",
        rows=rows,
    )
