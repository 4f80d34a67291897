"""Redeeming: points for a code, never twice the same points, clear refusals that change
nothing, points back when the store cannot make the code."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from circolo.commerce import discounts
from circolo.commerce.discounts import CreatedDiscount, DiscountError
from circolo.loyalty import ledger
from circolo.loyalty.models import (
    MemberTier,
    Movement,
    PoolCode,
    Reason,
    Redemption,
    Reward,
    Tier,
)
from circolo.loyalty.rewards import (
    RedeemError,
    RewardError,
    RewardIn,
    pool_codes_add,
    redemption_request,
    redemptions_mark_used,
    redemptions_retry,
    reward_save,
    rewards_available,
)
from circolo.testing.commerce import make_store
from circolo.testing.factories import MemberFactory

pytestmark = pytest.mark.django_db


def give(member: Any, points: int, key: str = "start") -> None:
    ledger.movements_post(
        workspace_id=member.workspace_id,
        items=[
            ledger.transfer(
                key=f"{key}:{member.pk}",
                reason=Reason.BONUS,
                member_id=member.pk,
                source=ledger.ISSUANCE,
                target=ledger.member_account(member.pk),
                points=points,
            )
        ],
    )


def pool_reward(workspace: Any, *, codes: int = 3, cost: int = 100, **extra: Any) -> Reward:
    reward = Reward.objects.create(
        workspace=workspace,
        name="Five off",
        kind=Reward.Kind.AMOUNT_OFF,
        cost_points=cost,
        amount_minor=500,
        currency="EUR",
        code_source=Reward.CodeSource.POOL,
        **extra,
    )
    pool_codes_add(reward=reward, codes=[f"CODE-{i}" for i in range(codes)], actor=None)
    return reward


def store_reward(workspace: Any) -> Reward:
    store = make_store(workspace, platform="shopify", external_id="shop.myshopify.com")
    return Reward.objects.create(
        workspace=workspace,
        name="Ten percent",
        kind=Reward.Kind.PERCENT_OFF,
        cost_points=200,
        percent=10,
        code_source=Reward.CodeSource.STORE,
        store=store,
    )


def test_redeeming_spends_the_points_and_gives_a_pool_code_once_per_request(workspace) -> None:
    member = MemberFactory(workspace=workspace)
    give(member, 250)
    reward = pool_reward(workspace)
    first = redemption_request(member=member, reward=reward, request_key="click-1")
    again = redemption_request(member=member, reward=reward, request_key="click-1")
    assert first.pk == again.pk
    assert first.status == Redemption.Status.ISSUED and first.code == "CODE-0"
    assert ledger.member_balance(member_id=member.pk).points == 150
    assert PoolCode.objects.filter(reward=reward, taken_at__isnull=False).count() == 1
    second = redemption_request(member=member, reward=reward, request_key="click-2")
    assert second.code == "CODE-1"
    assert ledger.ledger_verify(workspace_id=workspace.pk).ok


@pytest.mark.parametrize(
    ("case", "field"),
    [("poor", "points"), ("disabled", "reward"), ("spent", "reward"), ("stock", "reward")],
)
def test_refusals_are_clear_and_change_nothing(workspace, case: str, field: str) -> None:
    member = MemberFactory(workspace=workspace)
    give(member, 50 if case == "poor" else 1_000)
    reward = pool_reward(workspace, codes=0 if case == "spent" else 2)
    if case == "disabled":
        reward.enabled = False
        reward.save()
    if case == "stock":
        reward.stock = 1
        reward.save()
        redemption_request(member=member, reward=reward, request_key="first")
    movements = Movement.objects.count()
    redemptions = Redemption.objects.count()
    with pytest.raises(RedeemError) as raised:
        redemption_request(member=member, reward=reward, request_key="late")
    assert raised.value.field == field and raised.value.message
    assert Movement.objects.count() == movements
    assert Redemption.objects.count() == redemptions


def test_a_tier_reward_needs_the_tier(workspace) -> None:
    member = MemberFactory(workspace=workspace)
    give(member, 1_000)
    gold = Tier.objects.create(workspace=workspace, name="Gold", threshold=50_000)
    reward = pool_reward(workspace, tier=gold)
    with pytest.raises(RedeemError, match="Gold"):
        redemption_request(member=member, reward=reward, request_key="k")
    MemberTier.objects.create(member=member, workspace=workspace, tier=gold)
    assert redemption_request(member=member, reward=reward, request_key="k").code


def test_store_codes_are_made_through_the_connector(workspace, monkeypatch) -> None:
    member = MemberFactory(workspace=workspace)
    give(member, 500)
    reward = store_reward(workspace)
    specs = []

    def made(*, store: Any, spec: Any) -> CreatedDiscount:
        specs.append(spec)
        return CreatedDiscount(code=spec.code, external_id="price-rule-7")

    monkeypatch.setattr(discounts, "discount_create", made)
    redemption = redemption_request(member=member, reward=reward, request_key="k")
    assert redemption.status == Redemption.Status.ISSUED
    assert redemption.external_id == "price-rule-7"
    assert specs[0].kind == "percent_off" and specs[0].percent == 10
    assert specs[0].code == redemption.code and redemption.code.startswith("R-")
    assert ledger.member_balance(member_id=member.pk).points == 300


def test_a_code_the_store_refuses_gives_the_points_back(workspace, monkeypatch) -> None:
    member = MemberFactory(workspace=workspace)
    give(member, 500)
    reward = store_reward(workspace)

    def refused(*, store: Any, spec: Any) -> CreatedDiscount:
        raise DiscountError("The shop refused the code.", retryable=False)

    monkeypatch.setattr(discounts, "discount_create", refused)
    redemption = redemption_request(member=member, reward=reward, request_key="k")
    assert redemption.status == Redemption.Status.FAILED
    assert "refused" in redemption.error
    assert ledger.member_balance(member_id=member.pk).points == 500
    reasons = list(
        Movement.objects.filter(member=member).order_by("pk").values_list("reason", flat=True)
    )
    assert reasons == [Reason.BONUS, Reason.REDEMPTION, Reason.REDEMPTION_REFUNDED]
    assert ledger.ledger_verify(workspace_id=workspace.pk).ok


def test_a_store_that_is_down_is_retried_later(workspace, monkeypatch) -> None:
    member = MemberFactory(workspace=workspace)
    give(member, 500)
    reward = store_reward(workspace)
    answers: list[Any] = [DiscountError("Timed out.", retryable=True)]

    def flaky(*, store: Any, spec: Any) -> CreatedDiscount:
        if answers:
            raise answers.pop()
        return CreatedDiscount(code=spec.code, external_id="42")

    monkeypatch.setattr(discounts, "discount_create", flaky)
    redemption = redemption_request(member=member, reward=reward, request_key="k")
    assert redemption.status == Redemption.Status.ISSUING
    assert ledger.member_balance(member_id=member.pk).points == 300
    assert redemptions_retry(now=timezone.now() + dt.timedelta(minutes=10)) == 1
    redemption.refresh_from_db()
    assert redemption.status == Redemption.Status.ISSUED and redemption.external_id == "42"


def test_codes_used_on_an_order_are_marked_used(workspace) -> None:
    member = MemberFactory(workspace=workspace)
    give(member, 100)
    reward = pool_reward(workspace)
    redemption = redemption_request(member=member, reward=reward, request_key="k")
    assert redemptions_mark_used(workspace_id=workspace.pk, uses=[("code-0", 77)]) == 1
    redemption.refresh_from_db()
    assert redemption.status == Redemption.Status.USED and redemption.used_order_id == 77
    assert redemptions_mark_used(workspace_id=workspace.pk, uses=[("CODE-0", 78)]) == 0


def test_other_workspaces_rewards_cannot_be_redeemed(workspace, other_workspace) -> None:
    member = MemberFactory(workspace=workspace)
    give(member, 1_000)
    theirs = pool_reward(other_workspace)
    with pytest.raises(RedeemError):
        redemption_request(member=member, reward=theirs, request_key="k")


def test_pool_upload_skips_known_and_lists_bad_codes(workspace) -> None:
    reward = pool_reward(workspace, codes=2)
    result = pool_codes_add(
        reward=reward, codes=["CODE-0", "NEW-1", "", "bad code!", "NEW-1"], actor=None
    )
    assert (result.added, result.duplicates, result.invalid) == (1, 1, ["bad code!"])
    assert [r.pk for r in rewards_available(workspace_id=workspace.pk)] == [reward.pk]


def test_reward_form_errors_name_each_field(workspace) -> None:
    with pytest.raises(RewardError) as raised:
        reward_save(
            workspace=workspace,
            data=RewardIn(name="", kind="percent_off", cost_points=-1, percent=0),
            actor=None,
        )
    assert {"name", "cost_points", "percent", "store"} <= set(raised.value.errors)
    file_store = make_store(workspace, platform="file")
    with pytest.raises(RewardError) as raised:
        reward_save(
            workspace=workspace,
            data=RewardIn(
                name="Five", kind="amount_off", cost_points=100, amount_minor=500,
                store_id=file_store.pk,
            ),
            actor=None,
        )  # fmt: skip
    assert "upload" in raised.value.errors["store"]


def test_a_tiers_free_perk_is_given_once_a_month_to_its_members(workspace) -> None:
    member = MemberFactory(workspace=workspace)
    silver = Tier.objects.create(workspace=workspace, name="Silver", threshold=20_000)
    perk = pool_reward(workspace, cost=0, tier=silver)
    perk.kind = Reward.Kind.FREE_SHIPPING
    perk.save()
    assert perk.pk in [r.pk for r in rewards_available(workspace_id=workspace.pk)]
    with pytest.raises(RedeemError, match="Silver"):
        redemption_request(member=member, reward=perk, request_key="a")
    MemberTier.objects.create(member=member, workspace=workspace, tier=silver)
    now = dt.datetime(2026, 5, 10, tzinfo=dt.UTC)
    first = redemption_request(member=member, reward=perk, request_key="a", now=now)
    assert first.code == "CODE-0" and first.points == 0
    with pytest.raises(RedeemError, match="month"):
        redemption_request(
            member=member, reward=perk, request_key="b", now=now + dt.timedelta(days=5)
        )
    later = redemption_request(
        member=member, reward=perk, request_key="c", now=now + dt.timedelta(days=25)
    )
    assert later.code == "CODE-1"
    assert ledger.ledger_verify(workspace_id=workspace.pk).ok
