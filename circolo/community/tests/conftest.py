from __future__ import annotations

from typing import Any

import pytest

from circolo.community import safety, trust


@pytest.fixture(autouse=True)
def _no_posting_limits(request: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests post many times a second; the limits have their own tests (marker limits)."""
    if request.node.get_closest_marker("limits") is None:
        unlimited = trust.Limits(10_000, 10_000, 0, 10_000, 10_000, 10_000)
        monkeypatch.setattr(trust, "LIMITS", dict.fromkeys(trust.LIMITS, unlimited))
        monkeypatch.setattr(safety, "SPAM_CHECKS", False)


@pytest.fixture(autouse=True)
def _no_page_cache(settings: Any) -> None:
    """Each test reads pages fresh; the shared page cache has its own tests."""
    settings.CIRCOLO_COMMUNITY_PAGE_CACHE_SECONDS = 0
