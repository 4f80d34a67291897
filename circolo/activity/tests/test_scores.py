from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.utils import translation
from hypothesis import given
from hypothesis import strategies as st

from circolo.activity.scores import (
    LEVEL_MIN_LOVE,
    LEVELS,
    level_growth_range,
    level_label,
    level_of,
    love_now,
)

NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
MONTH = dt.timedelta(days=30.436875)
EPOCH = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def growth_of(weight, when):
    return weight * (1 / 0.9) ** ((when - EPOCH) / MONTH)


@pytest.mark.parametrize(
    ("love", "level"),
    [
        (0.0, "inactive"),
        (0.999, "inactive"),
        (1.0, "casual"),
        (9.99, "casual"),
        (10.0, "regular"),
        (49.9, "regular"),
        (50.0, "core"),
        (199.99, "core"),
        (200.0, "champion"),
        (10_000.0, "champion"),
    ],
)
def test_level_thresholds(love, level):
    assert level_of(love) == level


def test_levels_are_ordered_and_labelled_in_every_language():
    assert LEVELS == ("inactive", "casual", "regular", "core", "champion")
    assert [LEVEL_MIN_LOVE[level] for level in LEVELS] == [0, 1, 10, 50, 200]
    assert level_label("champion") == "Champion"
    with translation.override("it"):
        assert all(isinstance(level_label(level), str) for level in LEVELS)


def test_love_decays_by_nine_tenths_a_month():
    growth = growth_of(10, NOW)
    assert love_now(growth, NOW) == pytest.approx(10)
    assert love_now(growth, NOW + MONTH) == pytest.approx(9)
    assert love_now(growth, NOW + 12 * MONTH) == pytest.approx(10 * 0.9**12)
    older = growth_of(5, NOW - 3 * MONTH)
    assert love_now(growth + older, NOW) == pytest.approx(10 + 5 * 0.9**3)


@given(love=st.floats(0, 1e6, allow_nan=False), months=st.floats(-24, 240))
def test_growth_range_selects_the_same_level_as_level_of(love, months):
    now = EPOCH + months * MONTH
    growth = love / (0.9**months)
    level = level_of(love_now(growth, now))
    low, high = level_growth_range(level, now)
    assert low <= growth * (1 + 1e-12)
    assert high is None or growth < high * (1 + 1e-12)


def test_growth_ranges_tile_the_line():
    ranges = [level_growth_range(level, NOW) for level in LEVELS]
    assert ranges[0][0] == 0
    assert ranges[-1][1] is None
    for (_, high), (low, _) in itertools.pairwise(ranges):
        assert high == low
