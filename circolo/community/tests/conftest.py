from __future__ import annotations

from typing import Any

import pytest

from circolo.community import services


@pytest.fixture(autouse=True)
def _no_posting_limits(request: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests post many times a second; the limits have their own tests (marker limits)."""
    if request.node.get_closest_marker("limits") is None:
        monkeypatch.setattr(services, "POST_INTERVAL_SECONDS", 0)
        monkeypatch.setattr(services, "POSTS_PER_DAY", 10_000)
        monkeypatch.setattr(services, "THREADS_PER_DAY", 10_000)
