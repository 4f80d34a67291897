"""Earn rules: what pays how many points, their defaults, validation and versions.

A rule set is a dict {rule key: settings}. "order" pays `points` per `per` currency units of
net merchandise (shipping and tax excluded), rounded down; every other rule pays a fixed
number of points, at most `daily_cap` times a day (0: no cap). No rule can look at a
review's rating: rules only see the kind of action.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from circolo.core.audit import audit_record
from circolo.core.models import Workspace
from circolo.loyalty.models import Program, RuleSet


@dataclass(frozen=True)
class RuleSpec:
    key: str
    label: Promise
    # The activity kinds it pays for (empty: paid by a job or a service, not an activity).
    kinds: tuple[str, ...]
    points: int
    daily_cap: int
    enabled: bool = True
    # "once": at most once per member ever (sign-up, first purchase, a social network).
    once: bool = False


ORDER = "order"
ACTION_RULES: dict[str, RuleSpec] = {
    spec.key: spec
    for spec in (
        RuleSpec("signup", _("Joining the program"), ("signup",), 100, 0, once=True),
        RuleSpec("first_purchase", _("First purchase"), (), 200, 0, once=True),
        RuleSpec("birthday", _("Birthday"), (), 100, 0),
        RuleSpec("post", _("Starting a discussion"), ("post",), 10, 3),
        RuleSpec("reply", _("Replying"), ("reply",), 5, 5),
        RuleSpec("accepted_answer", _("An accepted answer"), ("accepted_answer",), 50, 5),
        RuleSpec("review", _("A review"), ("review",), 50, 3),
        RuleSpec("review_photo", _("A review with a photo"), ("review",), 50, 3),
        RuleSpec("event_attendance", _("Attending an event"), ("event_attendance",), 30, 2),
        RuleSpec("idea_milestone", _("An idea reaching a milestone"), ("idea_milestone",), 200, 0),
        RuleSpec("social_follow", _("Following us on a social network"), ("social_follow",), 25, 0),
    )
}
RULE_LABELS: dict[str, Promise] = {
    ORDER: _("Orders"),
    **{key: spec.label for key, spec in ACTION_RULES.items()},
}
MAX_POINTS = 100_000
MAX_PER = 10_000


def default_rules() -> dict[str, dict[str, Any]]:
    rules: dict[str, dict[str, Any]] = {ORDER: {"enabled": True, "points": 1, "per": 1}}
    for key, spec in ACTION_RULES.items():
        rules[key] = {"enabled": spec.enabled, "points": spec.points, "daily_cap": spec.daily_cap}
    return rules


class RulesError(ValueError):
    """Rules that cannot be saved: {field: message}, the field being "<rule>.<setting>"."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def rules_clean(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A complete, valid rule set from `raw` (missing rules and settings take the defaults);
    RulesError naming each bad setting otherwise. Unknown rules are refused."""
    errors: dict[str, str] = {}
    clean = default_rules()
    for key in raw:
        if key not in clean:
            errors[key] = str(_("There is no rule called “%(rule)s”.") % {"rule": key})
    for key, settings in clean.items():
        given = raw.get(key, {})
        if not isinstance(given, dict):
            errors[key] = str(_("Give the rule's settings."))
            continue
        if "enabled" in given:
            settings["enabled"] = given["enabled"] in (True, "true", "on", "1", 1)
        names = ("points", "per") if key == ORDER else ("points", "daily_cap")
        for name in names:
            if name not in given:
                continue
            value = _int(given[name])
            low = 1 if name == "per" else 0
            high = MAX_PER if name == "per" else MAX_POINTS
            if value is None or not low <= value <= high:
                errors[f"{key}.{name}"] = str(
                    _("Give a whole number from %(low)s to %(high)s.") % {"low": low, "high": high}
                )
            else:
                settings[name] = value
    if errors:
        raise RulesError(errors)
    return clean


# --------------------------------------------------------------------------- program & versions


def program_get(*, workspace_id: int) -> Program:
    """The workspace's program settings, created with the defaults on first use."""
    program, _created = Program.objects.get_or_create(workspace_id=workspace_id)
    return program


def rules_in_force(*, workspace_id: int) -> dict[str, dict[str, Any]]:
    """The published rules (the defaults until the team publishes its own)."""
    row = (
        RuleSet.objects.filter(workspace_id=workspace_id, status=RuleSet.Status.PUBLISHED)
        .values_list("rules", flat=True)
        .first()
    )
    return rules_clean(row) if row is not None else default_rules()


def ruleset_draft(*, workspace: Workspace) -> RuleSet:
    """The team's draft (started from the rules in force when there is none)."""
    draft = RuleSet.objects.filter(workspace=workspace, status=RuleSet.Status.DRAFT).first()
    if draft is not None:
        return draft
    try:
        with transaction.atomic():
            version = (
                RuleSet.objects.filter(workspace=workspace).aggregate(v=Max("version"))["v"] or 0
            ) + 1
            return RuleSet.objects.create(
                workspace=workspace,
                version=version,
                status=RuleSet.Status.DRAFT,
                rules=rules_in_force(workspace_id=workspace.pk),
            )
    except IntegrityError:
        return RuleSet.objects.get(workspace=workspace, status=RuleSet.Status.DRAFT)


def ruleset_draft_save(*, workspace: Workspace, raw: dict[str, Any], actor: Any) -> RuleSet:
    """Validate and keep the draft rules (RulesError names each bad setting)."""
    rules = rules_clean(raw)
    draft = ruleset_draft(workspace=workspace)
    draft.rules = rules
    draft.created_by = actor if getattr(actor, "is_authenticated", False) else None
    draft.save(update_fields=["rules", "created_by"])
    return draft


def ruleset_publish(*, workspace: Workspace, actor: Any) -> RuleSet:
    """Put the draft in force (the previous rules are retired, kept for the record)."""
    with transaction.atomic():
        draft = (
            RuleSet.objects.select_for_update()
            .filter(workspace=workspace, status=RuleSet.Status.DRAFT)
            .first()
        )
        if draft is None:
            raise RulesError({"draft": str(_("There is no draft to publish."))})
        draft.rules = rules_clean(draft.rules)
        RuleSet.objects.filter(workspace=workspace, status=RuleSet.Status.PUBLISHED).update(
            status=RuleSet.Status.RETIRED
        )
        draft.status = RuleSet.Status.PUBLISHED
        draft.published_at = timezone.now()
        draft.published_by = actor if getattr(actor, "is_authenticated", False) else None
        draft.save()
        audit_record(
            workspace=workspace,
            actor=actor,
            action="loyalty.rules.publish",
            target=draft,
            data={"version": draft.version, "rules": draft.rules},
        )
    return draft
