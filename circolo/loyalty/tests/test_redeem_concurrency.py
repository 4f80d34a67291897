"""Acceptance 2: redemptions from several processes at once on PostgreSQL never spend the
same points twice (no balance below zero, every code given once, the ledger exact)."""

from __future__ import annotations

import multiprocessing
import random
from collections import Counter
from typing import Any

import pytest
from django.db import connection, connections
from django.utils import timezone

from circolo.core.models import Workspace
from circolo.loyalty import ledger
from circolo.loyalty.models import PoolCode, Reason, Redemption, Reward
from circolo.loyalty.rewards import RedeemError, redemption_request
from circolo.people.models import Member
from circolo.testing.factories import MemberFactory

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks"),
    pytest.mark.django_db(transaction=True),
]

PROCESSES = 4
ATTEMPTS = 60
MEMBERS = 8
START = 1_000
COST = 150


def _redeem_many(args: tuple[int, list[int], int, Any]) -> Counter[str]:
    """One worker process: many redemptions of random members, as fast as it can."""
    reward_id, member_ids, seed, barrier = args
    connections.close_all()
    rng = random.Random(seed)
    reward = Reward.objects.get(pk=reward_id)
    members = list(Member.objects.filter(pk__in=member_ids))
    outcome: Counter[str] = Counter()
    barrier.wait(timeout=60)
    for n in range(ATTEMPTS):
        member = rng.choice(members)
        try:
            redemption_request(member=member, reward=reward, request_key=f"{seed}-{n}")
            outcome["issued"] += 1
        except RedeemError as error:
            outcome[error.field] += 1
    connections.close_all()
    return outcome


def test_parallel_redemptions_never_overspend() -> None:
    workspace = Workspace.objects.create(name="Rush", slug="rush")
    reward = Reward.objects.create(
        workspace=workspace,
        name="Ten off",
        kind=Reward.Kind.AMOUNT_OFF,
        cost_points=COST,
        amount_minor=1000,
        currency="EUR",
        code_source=Reward.CodeSource.POOL,
    )
    PoolCode.objects.bulk_create(
        PoolCode(workspace=workspace, reward=reward, code=f"RUSH-{i}", uploaded_at=timezone.now())
        for i in range(PROCESSES * ATTEMPTS)
    )
    members = [MemberFactory(workspace=workspace) for _ in range(MEMBERS)]
    ledger.movements_post(
        workspace_id=workspace.pk,
        items=[
            ledger.transfer(
                key=f"start:{member.pk}",
                reason=Reason.BONUS,
                member_id=member.pk,
                source=ledger.ISSUANCE,
                target=ledger.member_account(member.pk),
                points=START,
            )
            for member in members
        ],
    )
    connections.close_all()
    context = multiprocessing.get_context("fork")
    barrier = context.Manager().Barrier(PROCESSES)
    ids = [member.pk for member in members]
    with context.Pool(PROCESSES) as pool:
        results = pool.map(
            _redeem_many, [(reward.pk, ids, seed, barrier) for seed in range(PROCESSES)]
        )
    outcome = sum(results, Counter())
    assert outcome["issued"] + outcome["points"] == PROCESSES * ATTEMPTS, outcome
    # Each member could afford START // COST rewards; the rush asked for far more.
    assert outcome["issued"] == MEMBERS * (START // COST)
    assert outcome["points"] > 0
    balances = ledger.members_balances(workspace_id=workspace.pk, member_ids=ids)
    issued = Counter(
        Redemption.objects.filter(workspace=workspace, status=Redemption.Status.ISSUED).values_list(
            "member_id", flat=True
        )
    )
    for member_id, balance in balances.items():
        assert balance.points >= 0
        assert balance.points == START - COST * issued[member_id]
    codes = list(Redemption.objects.filter(workspace=workspace).values_list("code", flat=True))
    assert len(codes) == len(set(codes)) == outcome["issued"]
    assert PoolCode.objects.filter(reward=reward, taken_at__isnull=False).count() == len(codes)
    assert ledger.ledger_verify(workspace_id=workspace.pk).ok
