from __future__ import annotations

import base64
import datetime as dt
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from circolo.insights.charts import daily_series_chart


def decode(uri: str) -> str:
    return base64.b64decode(uri.split(",", 1)[1]).decode("utf-8")


def test_chart_escapes_its_title_and_loads_nothing():
    series = [(dt.date(2025, 1, 1) + dt.timedelta(days=n), n % 5) for n in range(30)]
    chart = daily_series_chart(
        series=series, title="<script>alert(1)</script>", description="d", value_label="v"
    )
    svg = decode(chart.data_uri)
    assert "<script>alert(1)</script>" not in svg
    assert "&lt;script&gt;" in svg
    assert not re.search(r"<script[^>]+(href|src)=", svg)
    assert chart.rows == series


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10**7), max_size=120))
def test_any_series_renders(values):
    start = dt.date(2024, 2, 1)
    series = [(start + dt.timedelta(days=n), value) for n, value in enumerate(values)]
    chart = daily_series_chart(series=series, title="t", description="d", value_label="v")
    assert decode(chart.data_uri).startswith("<?xml")
    assert [value for _, value in chart.rows] == values
