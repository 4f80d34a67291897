from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def workspace(request: HttpRequest) -> dict[str, Any]:
    """Expose the current workspace and role (set by workspace views) to every template."""
    return {
        "workspace": getattr(request, "workspace", None),
        "workspace_role": getattr(request, "workspace_role", None),
    }
