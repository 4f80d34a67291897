"""The team's rule editor (draft, simulation, publishing) and program settings, under
/w/<slug>/loyalty/rules/ and /loyalty/settings/.

Anyone who may see members sees them; saving, simulating and publishing need
MANAGE_COMMUNITY (403 otherwise).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from circolo.core.permissions import Perm, has_perm
from circolo.core.web import WorkspaceRequest, workspace_view
from circolo.loyalty.forms import ProgramForm, PublishForm, RulesForm, limit_setting, rule_field
from circolo.loyalty.models import RuleSet
from circolo.loyalty.program_settings import ProgramError, program_update
from circolo.loyalty.rules import (
    ACTION_RULES,
    ORDER,
    RULE_LABELS,
    RulesError,
    program_get,
    rules_in_force,
    ruleset_draft_save,
    ruleset_publish,
)
from circolo.loyalty.simulation import Simulation, simulate

HISTORY_SIZE = 20


def _can_manage(request: WorkspaceRequest) -> bool:
    return has_perm(user=request.user, workspace=request.workspace, perm=Perm.MANAGE_COMMUNITY)


def rule_text(key: str, settings: dict[str, Any], currency: str) -> str:
    """One rule's settings in words ("10 points, at most 3 a day")."""
    if not settings.get("enabled"):
        return _("Off")
    points = int(settings.get("points", 0))
    if key == ORDER:
        return _("%(points)s points per %(per)s %(currency)s") % {
            "points": points,
            "per": settings.get("per", 1),
            "currency": currency,
        }
    spec = ACTION_RULES.get(key)
    text = _("%(points)s points") % {"points": points}
    if spec is not None and spec.once:
        return text + " " + _("(once per member)")
    cap = int(settings.get("daily_cap", 0))
    if cap:
        text += ", " + _("at most %(cap)s a day") % {"cap": cap}
    return text


def _rows(
    form: RulesForm,
    in_force: dict[str, dict[str, Any]],
    draft: RuleSet | None,
    currency: str,
) -> list[dict[str, Any]]:
    rows = []
    for key in (ORDER, *ACTION_RULES):
        limit = limit_setting(key)
        spec = ACTION_RULES.get(key)
        rows.append(
            {
                "key": key,
                "label": RULE_LABELS[key],
                "in_force": rule_text(key, in_force[key], currency),
                "draft": rule_text(key, draft.rules[key], currency)
                if draft is not None and key in draft.rules
                else "",
                "enabled": form[rule_field(key, "enabled")],
                "points": form[rule_field(key, "points")],
                "limit": form[rule_field(key, limit)],
                # Once-only rules have no daily cap to set.
                "once": spec is not None and spec.once,
                "paid_by_job": spec is not None and not spec.kinds,
            }
        )
    return rows


@workspace_view(Perm.VIEW_MEMBERS)
def rules_page(request: WorkspaceRequest) -> HttpResponse:
    """The rules in force and the draft side by side; managers edit the draft, simulate it
    over the last 90 days and publish it."""
    workspace = request.workspace
    can_manage = _can_manage(request)
    if request.method == "POST" and not can_manage:
        return HttpResponse(status=403)
    in_force = rules_in_force(workspace_id=workspace.pk)
    draft = RuleSet.objects.filter(workspace=workspace, status=RuleSet.Status.DRAFT).first()
    action = request.POST.get("action", "") if request.method == "POST" else ""
    data = request.POST if action in ("save", "simulate") else None
    form = RulesForm(data, rules=draft.rules if draft is not None else in_force)
    publish_form = PublishForm(request.POST if action == "publish" else None)
    simulation: Simulation | None = None
    status = 200
    if action in ("save", "simulate"):
        if form.is_valid():
            try:
                draft = ruleset_draft_save(workspace=workspace, raw=form.raw(), actor=request.user)
            except RulesError as error:
                for name, message in error.errors.items():
                    form.add_error(name if name in form.fields else None, message)
            else:
                if action == "save":
                    messages.success(request, _("The draft is saved."))
                    return redirect("loyalty_staff:rules", workspace.slug)
                simulation = simulate(workspace_id=workspace.pk, rules=draft.rules)
        if form.errors:
            status = 400
    elif action == "publish":
        if publish_form.is_valid():
            try:
                published = ruleset_publish(workspace=workspace, actor=request.user)
            except RulesError as error:
                publish_form.add_error(None, " ".join(error.errors.values()))
            else:
                messages.success(
                    request,
                    _("Version %(version)s of the rules is in force.")
                    % {"version": published.version},
                )
                return redirect("loyalty_staff:rules", workspace.slug)
        status = 400
    elif action:
        return HttpResponse(status=400)
    history = list(
        RuleSet.objects.filter(workspace=workspace)
        .select_related("created_by", "published_by")
        .order_by("-version")[:HISTORY_SIZE]
    )
    return render(
        request,
        "loyalty/staff_rules.html",
        {
            "rows": _rows(form, in_force, draft, workspace.currency),
            "form": form,
            "publish_form": publish_form,
            "draft": draft,
            "simulation": simulation,
            "history": history,
            "can_manage": can_manage,
            "currency": workspace.currency,
        },
        status=status,
    )


@workspace_view(Perm.VIEW_MEMBERS)
def settings_page(request: WorkspaceRequest) -> HttpResponse:
    """The program's settings; managers change them (audited)."""
    workspace = request.workspace
    can_manage = _can_manage(request)
    if request.method == "POST" and not can_manage:
        return HttpResponse(status=403)
    program = program_get(workspace_id=workspace.pk)
    form = ProgramForm(
        request.POST if request.method == "POST" else None,
        initial=ProgramForm.initial_for(program, workspace.currency),
        workspace=workspace,
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                program_update(workspace=workspace, data=form.program_in(), actor=request.user)
            except ProgramError as error:
                for name, message in error.errors.items():
                    target = "value_per_100" if name == "value_per_100_minor" else name
                    form.add_error(target if target in form.fields else None, message)
            else:
                messages.success(request, _("The program's settings are saved."))
                return redirect("loyalty_staff:settings", workspace.slug)
        status = 400
    if not can_manage:
        for field in form.fields.values():
            field.disabled = True
    return render(
        request,
        "loyalty/staff_settings.html",
        {"form": form, "can_manage": can_manage, "program": program},
        status=status,
    )
