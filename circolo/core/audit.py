"""The one way to write the audit log."""

from __future__ import annotations

from typing import Any

from circolo.core.models import ApiKey, AuditLog, Workspace


def audit_record(
    *,
    workspace: Workspace,
    actor: Any,
    action: str,
    target: Any = None,
    data: dict[str, Any] | None = None,
) -> AuditLog:
    """Append one audit entry; `actor` may be None for system actions."""
    user = actor if getattr(actor, "is_authenticated", False) else None
    data = dict(data or {})
    if isinstance(actor, ApiKey):
        # Writes through the REST API are traced to the key that made them.
        data.setdefault("api_key", actor.prefix)
    return AuditLog.objects.create(
        workspace=workspace,
        actor=user,
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        data=data,
    )
