"""A member's rewards pages: balance, pending points, tier, badges, referral link, the
catalogue, their codes and the history of every point."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from circolo.commerce.money import format_money
from circolo.community.services import member_for_user
from circolo.core.models import Workspace
from circolo.loyalty import ledger
from circolo.loyalty.birthdays import BirthdayError, birthday_set
from circolo.loyalty.expiry import member_expiry
from circolo.loyalty.history import member_history, member_pending_orders
from circolo.loyalty.models import Redemption, Reward, RewardsProfile
from circolo.loyalty.rewards import RedeemError, redemption_request, rewards_available
from circolo.loyalty.rules import program_get
from circolo.people.models import Member

REDEMPTIONS_SHOWN = 10


def _workspace(slug: str) -> Workspace:
    workspace = Workspace.objects.filter(slug=slug).first()
    if workspace is None:
        raise Http404
    return workspace


def _member(request: HttpRequest, workspace: Workspace) -> Member | None:
    if not request.user.is_authenticated:
        return None
    return member_for_user(workspace=workspace, user=request.user)


def reward_value(reward: Reward, language: str) -> str:
    """What a reward gives, in a few words."""
    kind = reward.kind
    if kind == Reward.Kind.AMOUNT_OFF:
        return _("%(amount)s off") % {
            "amount": format_money(reward.amount_minor, reward.currency or "EUR")
        }
    if kind == Reward.Kind.PERCENT_OFF:
        return _("%(percent)s%% off") % {"percent": reward.percent}
    if kind == Reward.Kind.FREE_SHIPPING:
        return _("Free shipping")
    product = reward.product.title_in(language) if reward.product is not None else ""
    if kind == Reward.Kind.FREE_PRODUCT:
        return _("Free: %(product)s") % {"product": product}
    if kind == Reward.Kind.EARLY_ACCESS:
        return _("Early access: %(product)s") % {"product": product}
    title = reward.event.title if reward.event is not None else ""
    return _("A place at “%(event)s”") % {"event": title}


def rewards_home(request: HttpRequest, slug: str) -> HttpResponse:
    workspace = _workspace(slug)
    member = _member(request, workspace)
    if member is None:
        return redirect_to_login(request.get_full_path())
    language = get_language() or "en"
    program = program_get(workspace_id=workspace.pk)
    balance = ledger.member_balance(member_id=member.pk)
    catalogue = [
        {
            "reward": reward,
            "name": reward.name_in(language),
            "value": reward_value(reward, language),
            "affordable": balance.points >= reward.cost_points,
            "missing": max(reward.cost_points - balance.points, 0),
        }
        for reward in rewards_available(workspace_id=workspace.pk)
    ]
    redemptions = list(
        Redemption.objects.filter(workspace=workspace, member=member)
        .select_related("reward")
        .order_by("-created_at", "-pk")[:REDEMPTIONS_SHOWN]
    )
    profile = RewardsProfile.objects.filter(member=member).first()
    context: dict[str, Any] = {
        "community": workspace,
        "viewer": member,
        "program": program,
        "balance": balance,
        "value": format_money(
            max(balance.points, 0) * program.value_per_100_minor // 100, workspace.currency
        ),
        "pending_orders": member_pending_orders(member=member),
        "expiry": member_expiry(member_id=member.pk, workspace_id=workspace.pk),
        "catalogue": catalogue,
        "redemptions": redemptions,
        "history": member_history(member=member, page=1),
        "request_key": uuid.uuid4().hex,
        "profile": profile,
        "months": [(n, _month_name(n)) for n in range(1, 13)],
    }
    context.update(_extras(member, request, language))
    return render(request, "loyalty/rewards.html", context)


def _extras(member: Member, request: HttpRequest, language: str) -> dict[str, Any]:
    """Tier progress, badges and the referral card, from their own modules."""
    from circolo.loyalty.badges import member_badges
    from circolo.loyalty.referral_views import referral_card
    from circolo.loyalty.tiers import tier_progress

    tier = tier_progress(member=member)
    if tier.basis == "spend":
        needed = format_money(tier.needed, tier.currency)
    else:
        needed = ngettext("%(n)s point", "%(n)s points", tier.needed) % {"n": tier.needed}
    return {
        "tier": tier,
        "tier_name": tier.tier.name_in(language) if tier.tier is not None else "",
        "next_tier_name": tier.next_tier.name_in(language) if tier.next_tier is not None else "",
        "tier_needed": needed,
        "badges": member_badges(member=member, language=language),
        "referral": referral_card(member=member, request=request),
    }


def _month_name(number: int) -> str:
    from django.utils.dates import MONTHS

    return str(MONTHS[number])


def history(request: HttpRequest, slug: str) -> HttpResponse:
    workspace = _workspace(slug)
    member = _member(request, workspace)
    if member is None:
        return redirect_to_login(request.get_full_path())
    return render(
        request,
        "loyalty/history.html",
        {
            "community": workspace,
            "viewer": member,
            "history": member_history(member=member, page=request.GET.get("page", 1)),
        },
    )


@require_POST
def redeem(request: HttpRequest, slug: str, reward_id: int) -> HttpResponse:
    workspace = _workspace(slug)
    member = _member(request, workspace)
    if member is None:
        return redirect_to_login(reverse("loyalty:rewards", args=[slug]))
    reward = Reward.objects.filter(workspace=workspace, pk=reward_id).first()
    if reward is None:
        raise Http404
    key = str(request.POST.get("request_key", "")).strip() or uuid.uuid4().hex
    try:
        redemption = redemption_request(member=member, reward=reward, request_key=key)
    except RedeemError as error:
        messages.error(request, error.message)
        return redirect(reverse("loyalty:rewards", args=[slug]) + "#catalogue")
    if redemption.status == Redemption.Status.FAILED:
        messages.error(
            request,
            _("The shop could not make your code (%(error)s). Your points are back.")
            % {"error": redemption.error},
        )
    elif redemption.status == Redemption.Status.ISSUING:
        messages.info(
            request,
            _("Your reward is on its way: the shop is slow to answer. Your code will show here."),
        )
    else:
        messages.success(request, _("Here is your code: %(code)s") % {"code": redemption.code})
    return redirect(reverse("loyalty:rewards", args=[slug]) + "#my-codes")


@require_POST
def birthday(request: HttpRequest, slug: str) -> HttpResponse:
    workspace = _workspace(slug)
    member = _member(request, workspace)
    if member is None:
        return redirect_to_login(reverse("loyalty:rewards", args=[slug]))
    try:
        month = int(request.POST.get("month", ""))
        day = int(request.POST.get("day", ""))
    except ValueError:
        messages.error(request, _("Choose the day and the month of your birthday."))
    else:
        try:
            birthday_set(member=member, month=month, day=day)
        except BirthdayError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, _("Birthday saved."))
    return redirect(reverse("loyalty:rewards", args=[slug]) + "#birthday")
