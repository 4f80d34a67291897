"""Member "love" and activity levels.

love = sum of weight x 0.9^(months since the activity). MemberScore stores
growth = sum of weight x (1/0.9)^(months from EPOCH to the activity), which only ever
grows by addition; love at any moment is growth x 0.9^(months from EPOCH to that moment).
"""

from __future__ import annotations

import datetime as dt
import math

from django.utils import timezone
from django.utils.translation import gettext

from circolo.activity.dialect import EPOCH, GROWTH_RATE, MONTH_SECONDS

LEVELS: tuple[str, ...] = ("inactive", "casual", "regular", "core", "champion")
# Lowest love of each level; a level runs up to (not including) the next one's minimum.
LEVEL_MIN_LOVE: dict[str, float] = {
    "inactive": 0.0,
    "casual": 1.0,
    "regular": 10.0,
    "core": 50.0,
    "champion": 200.0,
}


def level_label(level: str) -> str:
    """The level's name in the active language."""
    labels = {
        "inactive": gettext("Inactive"),
        "casual": gettext("Casual"),
        "regular": gettext("Regular"),
        "core": gettext("Core"),
        "champion": gettext("Champion"),
    }
    return labels[level]


def months_since_epoch(moment: dt.datetime) -> float:
    return (moment - EPOCH).total_seconds() / MONTH_SECONDS


def decay_factor(now: dt.datetime | None = None) -> float:
    """0.9^(months from EPOCH to now): love = growth x this factor."""
    return math.exp(-GROWTH_RATE * months_since_epoch(now or timezone.now()))


def love_now(growth: float, now: dt.datetime | None = None) -> float:
    """A member's love at `now` (default: this moment) from their stored growth."""
    return growth * decay_factor(now)


def level_of(love: float) -> str:
    """The level a love value falls in."""
    found = LEVELS[0]
    for level in LEVELS:
        if love >= LEVEL_MIN_LOVE[level]:
            found = level
    return found


def level_growth_range(level: str, now: dt.datetime | None = None) -> tuple[float, float | None]:
    """[low, high) bounds on MemberScore.growth for members of `level` at `now`.

    high is None for the top level. Members without a MemberScore row have love 0: they are
    "inactive", which callers filtering in SQL must include themselves.
    """
    factor = decay_factor(now)
    index = LEVELS.index(level)
    low = LEVEL_MIN_LOVE[level] / factor
    if index + 1 == len(LEVELS):
        return low, None
    return low, LEVEL_MIN_LOVE[LEVELS[index + 1]] / factor
