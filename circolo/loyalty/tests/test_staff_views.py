"""The team's loyalty pages (home, rules, settings, rewards, finance, disputes): owners work
on them, analysts only look, community members get 403 and outsiders 404; bad input is
shown next to its field; empty programs say so."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from circolo.core.models import AuditLog
from circolo.loyalty import ledger
from circolo.loyalty.actions import bonus_award
from circolo.loyalty.models import (
    Dispute,
    Movement,
    PoolCode,
    Program,
    Reason,
    Redemption,
    Reward,
    RuleSet,
)
from circolo.loyalty.rewards import RewardIn, reward_save
from circolo.loyalty.rules import default_rules, rules_in_force
from circolo.testing.factories import ActivityFactory, MemberFactory

pytestmark = pytest.mark.django_db

PAGES = ("", "rules/", "settings/", "rewards/", "finance/", "disputes/")


@pytest.fixture(autouse=True)
def _no_mfa(settings: Any) -> None:
    settings.CIRCOLO_MFA_ENFORCE = False


def url(workspace: Any, page: str = "") -> str:
    return f"/w/{workspace.slug}/loyalty/{page}"


def rules_post(action: str, **changes: Any) -> dict[str, Any]:
    """The rule form as a browser sends it: every rule's fields, with `changes` applied
    ("post.points": "20"); an unchecked box is simply absent."""
    data: dict[str, Any] = {"action": action}
    for key, settings in default_rules().items():
        for name, value in settings.items():
            if name == "enabled":
                if value:
                    data[f"{key}.enabled"] = "on"
            else:
                data[f"{key}.{name}"] = str(value)
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return data


def pool_reward(workspace: Any, **extra: Any) -> Reward:
    return reward_save(
        workspace=workspace,
        data=RewardIn(name="5 off", kind="amount_off", cost_points=100, amount_minor=500,
                      code_source="pool", **extra),
        actor=None,
    )  # fmt: skip


# --------------------------------------------------------------------------- access


@pytest.mark.parametrize("page", PAGES)
def test_every_page_for_every_persona(workspace, owner, analyst, member_user, outsider, page):
    response = owner.client.get(url(workspace, page))
    assert response.status_code == 200
    assert 'id="loyalty-team-nav"' in response.content.decode()
    assert analyst.client.get(url(workspace, page)).status_code == 200
    assert member_user.client.get(url(workspace, page)).status_code == 403
    assert outsider.client.get(url(workspace, page)).status_code == 404
    anonymous = owner.client.__class__()
    assert anonymous.get(url(workspace, page)).status_code == 302


@pytest.mark.parametrize("page", ["rules/", "settings/", "rewards/", "disputes/1/"])
def test_changes_need_manage_community(workspace, analyst, member_user, outsider, page):
    assert analyst.client.post(url(workspace, page), {"action": "save"}).status_code == 403
    assert member_user.client.post(url(workspace, page), {}).status_code == 403
    assert outsider.client.post(url(workspace, page), {}).status_code == 404


def test_empty_states(workspace, owner) -> None:
    home = owner.client.get(url(workspace)).content.decode()
    assert 'data-figure="holders"' in home and 'data-count="0"' in home
    for page, marker in (
        ("rules/", 'data-empty="versions"'),
        ("rewards/", 'data-empty="rewards"'),
        ("rewards/", 'data-empty="redemptions"'),
        ("disputes/", 'data-empty="disputes"'),
        ("disputes/", 'data-empty="answered"'),
    ):
        assert marker in owner.client.get(url(workspace, page)).content.decode(), page
    finance = owner.client.get(url(workspace, "finance/")).content.decode()
    assert "nothing issued yet" in finance and finance.count("data-month=") == 12


# --------------------------------------------------------------------------- home


def test_home_counts_what_waits(workspace, owner) -> None:
    ana = MemberFactory(workspace=workspace)
    bonus_award(workspace_id=workspace.pk, member_id=ana.pk, rule="bonus", key="b1", points=250)
    movement = Movement.objects.get(key="b1")
    Dispute.objects.create(workspace=workspace, member=ana, movement=movement, message="?",
                           created_at=timezone.now())  # fmt: skip
    text = owner.client.get(url(workspace)).content.decode()
    assert 'data-points="250"' in text and "EUR 2.50" in text
    assert '<p class="big" data-count="1">1</p>' in text
    for page in ("rules", "rewards", "finance", "disputes", "settings", "tiers", "badges"):
        assert f"/w/{workspace.slug}/loyalty/{page}/" in text


# --------------------------------------------------------------------------- rules


def test_rules_simulate_publish_and_history(workspace, owner) -> None:
    member = MemberFactory(workspace=workspace)
    for hour in range(4):
        ActivityFactory(member=member, workspace=workspace, kind="post",
                        occurred_at=timezone.now() - dt.timedelta(days=3, hours=hour))  # fmt: skip
    page = owner.client.get(url(workspace, "rules/")).content.decode()
    assert 'data-rule="post"' in page and "at most 3 a day" in page
    assert not RuleSet.objects.filter(workspace=workspace).exists()  # looking creates nothing

    response = owner.client.post(
        url(workspace, "rules/"),
        rules_post("simulate", **{"post.points": "20", "post.daily_cap": "0"}),
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert 'id="simulation-table"' in text
    # 4 posts on one day: 3 x 10 now, 4 x 20 with the draft.
    assert '<tr data-rule="post">' in text
    post_row = text.split('<tr data-rule="post">')[1].split("</tr>")[0]
    assert 'data-in-force="30"' in post_row and 'data-draft="80"' in post_row
    assert 'data-diff="50"' in post_row and "+EUR 0.50" in post_row
    draft = RuleSet.objects.get(workspace=workspace, status=RuleSet.Status.DRAFT)
    assert draft.rules["post"] == {"enabled": True, "points": 20, "daily_cap": 0}

    # Publishing needs the confirmation.
    response = owner.client.post(url(workspace, "rules/"), {"action": "publish"})
    assert response.status_code == 400
    assert "Confirm that you want to publish." in response.content.decode()
    assert rules_in_force(workspace_id=workspace.pk)["post"]["points"] == 10
    response = owner.client.post(url(workspace, "rules/"), {"action": "publish", "confirm": "on"})
    assert response.status_code == 302
    assert rules_in_force(workspace_id=workspace.pk)["post"]["points"] == 20
    assert AuditLog.objects.filter(workspace=workspace, action="loyalty.rules.publish").exists()
    page = owner.client.get(url(workspace, "rules/")).content.decode()
    assert 'data-version="1" data-status="published"' in page
    # No draft now: nothing to publish.
    assert 'id="publish-form"' not in page


def test_rules_save_turns_a_rule_off_and_errors_stay_by_their_field(workspace, owner) -> None:
    response = owner.client.post(
        url(workspace, "rules/"), rules_post("save", **{"reply.enabled": None})
    )
    assert response.status_code == 302
    draft = RuleSet.objects.get(workspace=workspace, status=RuleSet.Status.DRAFT)
    assert draft.rules["reply"]["enabled"] is False
    # The analyst sees the draft in words, without a form.
    response = owner.client.post(
        url(workspace, "rules/"),
        rules_post("simulate", **{"post.points": "-5", "order.per": "0", "review.daily_cap": "x"}),
    )
    assert response.status_code == 400
    text = response.content.decode()
    for rule in ("post", "order", "review"):
        row = text.split(f'<tr data-rule="{rule}">')[1].split("</tr>")[0]
        assert 'class="errorlist' in row, rule
    assert 'id="simulation-table"' not in text
    draft.refresh_from_db()
    assert draft.rules["post"]["points"] == 10  # nothing half-saved


def test_analyst_reads_the_rules_without_forms(workspace, owner, analyst) -> None:
    owner.client.post(url(workspace, "rules/"), rules_post("save", **{"post.points": "15"}))
    text = analyst.client.get(url(workspace, "rules/")).content.decode()
    assert 'id="rules-form"' not in text and "15 points, at most 3 a day" in text


def test_unknown_action_is_refused(workspace, owner) -> None:
    assert owner.client.post(url(workspace, "rules/"), {"action": "nope"}).status_code == 400


# --------------------------------------------------------------------------- settings


SETTINGS = {
    "enabled": "on", "value_per_100": "1.50", "return_window_days": "14",
    "expiry_months": "0", "tier_basis": "points", "tier_keep_months": "6",
    "referral_window_days": "45", "referral_advocate_points": "300",
    "referral_friend_reward": "", "referral_claims_per_address": "5",
}  # fmt: skip


def test_settings_saved_and_audited(workspace, owner, other_workspace) -> None:
    reward = pool_reward(workspace)
    response = owner.client.post(
        url(workspace, "settings/"), {**SETTINGS, "referral_friend_reward": str(reward.pk)}
    )
    assert response.status_code == 302
    program = Program.objects.get(workspace=workspace)
    assert (program.value_per_100_minor, program.return_window_days, program.expiry_months) == (
        150, 14, 0
    )  # fmt: skip
    assert (program.tier_basis, program.referral_friend_reward_id) == ("points", reward.pk)
    log = AuditLog.objects.get(workspace=workspace, action="loyalty.program.update")
    assert log.data["changes"]["return_window_days"] == [30, 14]
    # Saving the same again records nothing more.
    same = {**SETTINGS, "referral_friend_reward": reward.pk}
    owner.client.post(url(workspace, "settings/"), same)
    assert AuditLog.objects.filter(action="loyalty.program.update").count() == 1
    # Errors stay by their field; another workspace's reward cannot be chosen.
    elsewhere = pool_reward(other_workspace)
    bad = {**SETTINGS, "value_per_100": "1.505", "return_window_days": "999",
           "referral_friend_reward": str(elsewhere.pk), "tier_basis": "mood"}  # fmt: skip
    response = owner.client.post(url(workspace, "settings/"), bad)
    assert response.status_code == 400
    text = response.content.decode()
    assert text.count('class="field has-error"') == 4
    program.refresh_from_db()
    assert program.return_window_days == 14


# --------------------------------------------------------------------------- rewards


REWARD = {
    "name": "Tote bag", "description": "", "kind": "free_product", "cost_points": "800",
    "amount": "", "percent": "", "currency": "", "min_order": "", "code_source": "pool",
    "store": "", "product": "", "event": "", "tier": "", "valid_days": "60", "stock": "",
    "enabled": "on",
}  # fmt: skip


def test_rewards_create_edit_codes_and_redemptions(workspace, owner) -> None:
    from circolo.commerce.models import Product
    from circolo.testing.commerce import make_store

    store = make_store(workspace, external_id="bottega.myshopify.com")
    product = Product.objects.create(workspace=workspace, store=store, external_id="p1",
                                     title="Tote Bag Verde")  # fmt: skip
    response = owner.client.post(
        url(workspace, "rewards/"), {**REWARD, "product": "tote bag verde"}
    )
    assert response.status_code == 302
    reward = Reward.objects.get(workspace=workspace)
    assert (reward.product_id, reward.cost_points, reward.currency) == (product.pk, 800, "EUR")
    edit = url(workspace, f"rewards/{reward.pk}/")
    assert response["Location"] == edit

    upload = SimpleUploadedFile("codes.csv", b"CODE-3,x\nCODE-4\n")
    response = owner.client.post(
        edit, {"action": "codes", "codes": "CODE-1\nCODE-2\nCODE-1\nno good!\n", "file": upload}
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert 'data-added="4"' in text and 'data-invalid="1"' in text and "no good!" in text
    assert 'data-codes-left="4"' in text
    response = owner.client.post(edit, {"action": "codes", "codes": "CODE-1\nCODE-5"})
    assert 'data-added="1" data-duplicates="1"' in response.content.decode()
    assert PoolCode.objects.filter(reward=reward).count() == 5

    response = owner.client.post(edit, {**REWARD, "action": "save", "name": "Big tote",
                                        "product": str(product.pk)})  # fmt: skip
    assert response.status_code == 302
    reward.refresh_from_db()
    assert reward.name == "Big tote"

    member = MemberFactory(workspace=workspace, display_name="Ana")
    Redemption.objects.create(workspace=workspace, member=member, reward=reward, points=800,
                              status="failed", request_key="k", error="The shop said no",
                              created_at=timezone.now())  # fmt: skip
    listing = owner.client.get(url(workspace, "rewards/")).content.decode()
    assert f'id="reward-{reward.pk}" data-redeemed="0" data-codes-left="5"' in listing
    assert "The shop said no" in listing and 'data-status="failed"' in listing


def test_reward_errors_are_shown_by_their_field(workspace, owner, other_workspace) -> None:
    from circolo.community.models import Event, Space

    cases = [
        ({"name": ""}, "name"),
        ({"kind": "amount_off", "amount": ""}, "amount"),
        ({"kind": "amount_off", "amount": "1.234"}, "amount"),
        ({"kind": "percent_off", "percent": "0"}, "percent"),
        ({"product": "nothing like it"}, "product"),
        ({"kind": "event_ticket", "code_source": "circolo"}, "event"),
        ({"kind": "amount_off", "amount": "5", "code_source": "store"}, "store"),
        ({"currency": "EURO"}, "currency"),
    ]
    for changes, field in cases:
        response = owner.client.post(url(workspace, "rewards/"), {**REWARD, **changes})
        assert response.status_code == 400, changes
        errors = response.context["form"].errors
        assert list(errors) == [field], (changes, errors)
        assert str(errors[field][0]) in response.content.decode().replace("&#x27;", "'")
    # An event of another workspace is not a choice.
    space = Space.objects.create(workspace=other_workspace, name="Else", slug="else")
    event = Event.objects.create(workspace=other_workspace, space=space, title="Far",
                                 starts_at=timezone.now(), ends_at=timezone.now())  # fmt: skip
    ticket = {**REWARD, "kind": "event_ticket", "code_source": "circolo"}
    response = owner.client.post(url(workspace, "rewards/"), {**ticket, "event": str(event.pk)})
    assert response.status_code == 400
    assert not Reward.objects.filter(workspace=workspace).exists()
    # One of the workspace's own events is.
    space = Space.objects.create(workspace=workspace, name="Here", slug="here")
    own = Event.objects.create(workspace=workspace, space=space, title="Near",
                               starts_at=timezone.now(), ends_at=timezone.now())  # fmt: skip
    response = owner.client.post(url(workspace, "rewards/"), {**ticket, "event": str(own.pk)})
    assert response.status_code == 302
    assert Reward.objects.get(workspace=workspace).event_id == own.pk


def test_lists_read_in_a_fixed_number_of_queries(workspace, owner) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from circolo.loyalty.disputes import dispute_open

    def counts() -> list[int]:
        found = []
        for page in ("rewards/", "disputes/", "rules/"):
            with CaptureQueriesContext(connection) as queries:
                assert owner.client.get(url(workspace, page)).status_code == 200
            found.append(len(queries))
        return found

    def add(n: int) -> None:
        for _ in range(n):
            member = MemberFactory(workspace=workspace)
            reward = pool_reward(workspace)
            Redemption.objects.create(
                workspace=workspace, member=member, reward=reward, points=1, request_key="k",
                created_at=timezone.now(),
            )  # fmt: skip
            bonus_award(workspace_id=workspace.pk, member_id=member.pk, rule="bonus",
                        key=f"b{member.pk}", points=5)  # fmt: skip
            dispute_open(member=member, movement=Movement.objects.get(key=f"b{member.pk}"),
                         message="?")  # fmt: skip

    add(1)
    owner.client.post(url(workspace, "rules/"), rules_post("save"))
    few = counts()
    add(5)
    assert counts() == few


def test_reward_of_another_workspace_is_404_and_codes_need_a_pool(
    workspace, owner, other_workspace
) -> None:
    elsewhere = pool_reward(other_workspace)
    assert owner.client.get(url(workspace, f"rewards/{elsewhere.pk}/")).status_code == 404
    reward = pool_reward(workspace)
    response = owner.client.post(url(workspace, f"rewards/{reward.pk}/"), {"action": "codes"})
    assert response.status_code == 400
    assert "Paste some codes or choose a file." in response.content.decode()
    bad_file = SimpleUploadedFile("codes.pdf", b"%PDF")
    response = owner.client.post(
        url(workspace, f"rewards/{reward.pk}/"), {"action": "codes", "file": bad_file}
    )
    assert response.status_code == 400
    assert "Upload a .txt or .csv file." in response.content.decode()


# --------------------------------------------------------------------------- finance


def test_finance_page_and_verify(workspace, owner, analyst) -> None:
    ana = MemberFactory(workspace=workspace)
    bonus_award(workspace_id=workspace.pk, member_id=ana.pk, rule="bonus", key="b1", points=400)
    text = owner.client.get(url(workspace, "finance/")).content.decode()
    assert '<tr data-row="issued">' in text and "EUR 4.00" in text
    response = analyst.client.post(url(workspace, "finance/"), {"action": "verify"})
    assert response.status_code == 200
    assert 'id="verify-result" data-ok="true"' in response.content.decode()
    assert owner.client.post(url(workspace, "finance/"), {}).status_code == 400


def test_finance_shows_a_broken_ledger(workspace, owner) -> None:
    from circolo.loyalty.models import Account

    ana = MemberFactory(workspace=workspace)
    bonus_award(workspace_id=workspace.pk, member_id=ana.pk, rule="bonus", key="b1", points=400)
    Account.objects.filter(member=ana).update(balance=401)
    response = owner.client.post(url(workspace, "finance/"), {"action": "verify"})
    text = response.content.decode()
    assert 'data-ok="false"' in text and "balance 401, entries 400" in text
    assert ledger.ledger_verify(workspace_id=workspace.pk).ok is False
    assert Movement.objects.filter(reason=Reason.BONUS).count() == 1
