"""The program's settings as the team changes them: checked, saved and audited together."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from circolo.core.audit import audit_record
from circolo.core.models import Workspace
from circolo.loyalty.models import Program, Reward
from circolo.loyalty.rules import MAX_POINTS, program_get

# (low, high) of each number the team sets.
BOUNDS: dict[str, tuple[int, int]] = {
    "value_per_100_minor": (0, 1_000_000_000),
    "return_window_days": (0, 365),
    "expiry_months": (0, 120),
    "tier_keep_months": (1, 120),
    "referral_window_days": (1, 365),
    "referral_advocate_points": (0, MAX_POINTS),
    "referral_claims_per_address": (1, 1000),
}


@dataclass(frozen=True)
class ProgramIn:
    enabled: bool
    value_per_100_minor: int
    return_window_days: int
    expiry_months: int
    tier_basis: str
    tier_keep_months: int
    referral_window_days: int
    referral_advocate_points: int
    referral_claims_per_address: int
    referral_friend_reward_id: int | None = None


class ProgramError(ValueError):
    """Settings that cannot be saved: {field: message}."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def program_update(*, workspace: Workspace, data: ProgramIn, actor: Any) -> Program:
    """Save the program's settings (ProgramError names each bad one: a number out of its
    range, an unknown tier basis, a friend reward of another workspace). What changed is
    audited, old and new values side by side; saving the same values records nothing."""
    errors: dict[str, str] = {}
    for name, (low, high) in BOUNDS.items():
        value = getattr(data, name)
        if not low <= value <= high:
            errors[name] = _("Give a whole number from %(low)s to %(high)s.") % {
                "low": f"{low:,}",
                "high": f"{high:,}",
            }
    if data.tier_basis not in Program.TierBasis.values:
        errors["tier_basis"] = _("Choose what tiers are measured on.")
    reward_id = data.referral_friend_reward_id
    if (
        reward_id is not None
        and not Reward.objects.filter(workspace=workspace, pk=reward_id).exists()
    ):
        errors["referral_friend_reward"] = _("Choose one of your rewards.")
    if errors:
        raise ProgramError(errors)
    with transaction.atomic():
        program = program_get(workspace_id=workspace.pk)
        program = Program.objects.select_for_update().get(pk=program.pk)
        changes: dict[str, list[Any]] = {}
        for item in fields(ProgramIn):
            name = item.name
            old, new = getattr(program, name), getattr(data, name)
            if old != new:
                changes[name] = [old, new]
                setattr(program, name, new)
        if changes:
            program.save()
            audit_record(
                workspace=workspace,
                actor=actor,
                action="loyalty.program.update",
                target=program,
                data={"changes": changes},
            )
    return program
