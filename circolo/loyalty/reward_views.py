"""The team's reward catalogue, under /w/<slug>/loyalty/rewards/: every reward with its
cost, codes left and redemptions, a form to add or change one, code lists for rewards
without a store connector, and the latest redemptions with their errors.

Anyone who may see members sees it; changing anything needs MANAGE_COMMUNITY (403
otherwise). A reward of another workspace is a 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from circolo.core.permissions import Perm, has_perm
from circolo.core.web import WorkspaceRequest, workspace_view
from circolo.loyalty.forms import PoolCodesForm, RewardForm
from circolo.loyalty.models import Redemption, Reward
from circolo.loyalty.rewards import PoolUpload, RewardError, pool_codes_add, reward_save

RECENT_REDEMPTIONS = 20


def _can_manage(request: WorkspaceRequest) -> bool:
    return has_perm(user=request.user, workspace=request.workspace, perm=Perm.MANAGE_COMMUNITY)


def _rewards(workspace_id: int) -> QuerySet[Reward]:
    return (
        Reward.objects.filter(workspace_id=workspace_id)
        .select_related("store", "product", "event", "tier")
        .annotate(
            redeemed=Count(
                "redemptions",
                filter=~Q(redemptions__status=Redemption.Status.FAILED),
                distinct=True,
            ),
            pool_left=Count("pool", filter=Q(pool__taken_at__isnull=True), distinct=True),
        )
        .order_by("cost_points", "pk")
    )


# The service names amounts in minor units; the form takes them in currency units.
FORM_FIELDS = {"amount_minor": "amount", "min_order_minor": "min_order"}


def _reward_errors(form: RewardForm, error: RewardError) -> None:
    for name, message in error.errors.items():
        target = FORM_FIELDS.get(name, name)
        form.add_error(target if target in form.fields else None, message)


@workspace_view(Perm.VIEW_MEMBERS)
def reward_list(request: WorkspaceRequest) -> HttpResponse:
    """The catalogue and the latest redemptions; managers add rewards here."""
    workspace = request.workspace
    can_manage = _can_manage(request)
    if request.method == "POST" and not can_manage:
        return HttpResponse(status=403)
    form = (
        RewardForm(request.POST if request.method == "POST" else None, workspace=workspace)
        if can_manage
        else None
    )
    status = 200
    if form is not None and request.method == "POST":
        if form.is_valid():
            try:
                reward = reward_save(workspace=workspace, data=form.reward_in(), actor=request.user)
            except RewardError as error:
                _reward_errors(form, error)
            else:
                messages.success(
                    request, _("The reward “%(name)s” is added.") % {"name": reward.name}
                )
                return redirect("loyalty_staff:reward_edit", workspace.slug, reward.pk)
        status = 400
    redemptions = list(
        Redemption.objects.filter(workspace=workspace)
        .select_related("member", "reward")
        .order_by("-created_at", "-pk")[:RECENT_REDEMPTIONS]
    )
    return render(
        request,
        "loyalty/staff_rewards.html",
        {
            "rewards": list(_rewards(workspace.pk)),
            "form": form,
            "redemptions": redemptions,
            "can_manage": can_manage,
        },
        status=status,
    )


@workspace_view(Perm.VIEW_MEMBERS)
def reward_edit(request: WorkspaceRequest, reward_id: int) -> HttpResponse:
    """One reward: change it, and add codes to a reward that takes them from a list."""
    workspace = request.workspace
    reward = _rewards(workspace.pk).filter(pk=reward_id).first()
    if reward is None:
        raise Http404
    can_manage = _can_manage(request)
    if request.method == "POST" and not can_manage:
        return HttpResponse(status=403)
    action = request.POST.get("action", "save") if request.method == "POST" else ""
    form = RewardForm(
        request.POST if action == "save" else None,
        initial=RewardForm.initial_for(reward),
        workspace=workspace,
    )
    codes_form = PoolCodesForm(
        request.POST if action == "codes" else None,
        request.FILES if action == "codes" else None,
    )
    upload: PoolUpload | None = None
    status = 200
    if action == "save":
        if form.is_valid():
            try:
                reward_save(
                    workspace=workspace, data=form.reward_in(), actor=request.user, reward=reward
                )
            except RewardError as error:
                _reward_errors(form, error)
            else:
                messages.success(request, _("The reward is saved."))
                return redirect("loyalty_staff:reward_edit", workspace.slug, reward.pk)
        status = 400
    elif action == "codes":
        if codes_form.is_valid():
            try:
                upload = pool_codes_add(
                    reward=reward, codes=codes_form.code_lines(), actor=request.user
                )
            except RewardError as error:
                codes_form.add_error(None, " ".join(error.errors.values()))
                status = 400
            else:
                reward = _rewards(workspace.pk).get(pk=reward.pk)
                codes_form = PoolCodesForm()
        else:
            status = 400
    redemptions = list(
        Redemption.objects.filter(workspace=workspace, reward=reward)
        .select_related("member")
        .order_by("-created_at", "-pk")[:RECENT_REDEMPTIONS]
    )
    if not can_manage:
        for field in form.fields.values():
            field.disabled = True
    return render(
        request,
        "loyalty/staff_rewards.html",
        {
            "edit": reward,
            "form": form,
            "codes_form": codes_form if reward.code_source == Reward.CodeSource.POOL else None,
            "upload": upload,
            "redemptions": redemptions,
            "can_manage": can_manage,
        },
        status=status,
    )
