"""Issue 6, acceptance 4, in headless Chromium against the live test server: a member earns
points from a shop order and sees them pending (and the points of an older order, past its
return window, as hers), invites a friend who claims a welcome code, redeems a reward and
gets a code; the team changes a rule, simulates it over the last 90 days and publishes it.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from circolo.activity.services import activity_record
from circolo.commerce.schema import CustomerIn, LineIn, OrderIn
from circolo.commerce.services import order_upsert
from circolo.community.services import member_for_user
from circolo.core.models import Role, Workspace, WorkspaceRole
from circolo.loyalty.models import Redemption, Referral, Reward, RuleSet
from circolo.loyalty.orders import earnings_approve_due
from circolo.loyalty.rewards import pool_codes_add
from circolo.loyalty.rules import program_get
from circolo.testing.commerce import make_store

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a long sentence for the browser test"  # noqa: S105 (test account)


def user_with_session(live_server: Any, email: str) -> tuple[Any, dict[str, str]]:
    user = get_user_model().objects.create_user(username=email, email=email, password=PASSWORD)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    client = Client()
    client.force_login(user)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME]
    return user, {"name": cookie.key, "value": cookie.value, "url": live_server.url}


def shop_order(store: Any, *, number: str, email: str, euros: int, paid: dt.datetime) -> None:
    order_upsert(
        store=store,
        order=OrderIn(
            external_id=number,
            number=f"#{number}",
            currency="EUR",
            placed_at=paid,
            updated_at=paid,
            paid_at=paid,
            status="paid",
            shipping_minor=590,
            total_minor=euros * 100 + 590,
            customer=CustomerIn(external_id=email, email=email),
            lines=(LineIn(external_id="1", quantity=1, unit_price_minor=euros * 100),),
        ),
    )


def test_earn_see_pending_refer_redeem_and_simulate_a_rule(
    chromium: Any, page: Any, live_server: Any, settings: Any
) -> None:
    settings.CIRCOLO_MFA_ENFORCE = False
    workspace = Workspace.objects.create(name="Bottega Aurora", slug="aurora")
    store = make_store(workspace, platform="file")
    five_off = Reward.objects.create(
        workspace=workspace,
        name="Five euros off",
        kind=Reward.Kind.AMOUNT_OFF,
        cost_points=300,
        amount_minor=500,
        currency="EUR",
        code_source=Reward.CodeSource.POOL,
    )
    pool_codes_add(reward=five_off, codes=["AURORA-5-A", "AURORA-5-B"], actor=None)
    welcome = Reward.objects.create(
        workspace=workspace,
        name="Ten euros off your first order",
        kind=Reward.Kind.AMOUNT_OFF,
        cost_points=0,
        amount_minor=1000,
        currency="EUR",
        code_source=Reward.CodeSource.POOL,
    )
    pool_codes_add(reward=welcome, codes=["WELCOME-AURORA-1"], actor=None)
    program = program_get(workspace_id=workspace.pk)
    program.referral_friend_reward = welcome
    program.save()

    # The member bought twice: 40 days ago (window passed) and today (pending).
    user, member_cookie = user_with_session(live_server, "giulia@example.com")
    member = member_for_user(workspace=workspace, user=user)
    shop_order(
        store, number="A1001", email=user.email, euros=150,
        paid=timezone.now() - dt.timedelta(days=40),
    )  # fmt: skip
    earnings_approve_due()
    shop_order(store, number="A1002", email=user.email, euros=80, paid=timezone.now())
    # Some community activity in the last 90 days, for the rule simulation.
    for n in range(3):
        activity_record(
            workspace=workspace,
            member=member,
            kind="review",
            channel="reviews",
            occurred_at=timezone.now() - dt.timedelta(days=n + 1),
            source="reviews",
            source_id=f"review:{n}",
        )

    base = f"{live_server.url}/c/{workspace.slug}/rewards"
    page.context.add_cookies([member_cookie])

    # 1. The member sees today's order pending, and the points of the older one as hers.
    page.goto(f"{base}/")
    pending = page.locator("[data-pending]").first
    assert pending.get_attribute("data-pending") == "80"
    assert page.locator('[data-pending-order="#A1002"]').is_visible()
    # 150 for the first order, 200 for a first purchase, 100 for joining, 3 reviews x 50.
    assert page.locator("[data-balance]").first.get_attribute("data-balance") == "600"
    assert "Order #A1002" in page.locator("#history").inner_text()

    # 2. She invites a friend, who opens the link signed out and claims a welcome code.
    link = page.locator("#referral-link").input_value()
    assert "/rewards/invite/" in link
    friend = chromium.new_context()
    friend_page = friend.new_page()
    friend_page.goto(link)
    friend_page.locator("#claim-form input[name=email]").fill("marco@example.org")
    friend_page.locator("#claim-form input[name=name]").fill("Marco Rossi")
    friend_page.locator("#claim-form button[type=submit]").click()
    friend_page.wait_for_selector("#friend-code")
    assert friend_page.locator("#friend-code").inner_text() == "WELCOME-AURORA-1"
    friend.close()
    referral = Referral.objects.get(workspace=workspace)
    assert (referral.advocate_id, referral.status) == (member.pk, Referral.Status.CLAIMED)
    page.goto(f"{base}/referrals/")
    assert "Marco" in page.content()

    # 3. She redeems five euros off and gets a code.
    page.goto(f"{base}/")
    page.locator(f'[data-reward="{five_off.pk}"] button[type=submit]').click()
    page.wait_for_url(re.compile(r".*/rewards/#my-codes"))
    assert "AURORA-5-A" in page.locator(".messages").inner_text()
    assert page.locator("#my-codes [data-code]").first.inner_text() == "AURORA-5-A"
    assert page.locator("[data-balance]").first.get_attribute("data-balance") == "300"
    assert Redemption.objects.filter(member=member, status="issued").count() == 1

    # 4. The team raises the points of a review, simulates it, and publishes it.
    owner, owner_cookie = user_with_session(live_server, "owner@aurora.example")
    WorkspaceRole.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
    staff = chromium.new_context()
    staff.add_cookies([owner_cookie])
    staff_page = staff.new_page()
    staff_page.goto(f"{live_server.url}/w/{workspace.slug}/loyalty/rules/")
    staff_page.locator('#rules-table tr[data-rule="review"] input[type=number]').first.fill("80")
    staff_page.locator("#rules-form button[value=simulate]").click()
    staff_page.wait_for_load_state()
    review = staff_page.locator('tr[data-rule="review"][data-rule]').first
    simulated = staff_page.locator('tr[data-rule="review"] [data-draft]').first
    assert review.is_visible()
    # 3 reviews in the last 90 days: 150 points in force, 240 under the draft.
    assert simulated.get_attribute("data-draft") == "240"
    staff_page.locator("#publish-form input[name=confirm]").check()
    staff_page.locator("#publish-form button[type=submit]").click()
    staff_page.wait_for_load_state()
    published = RuleSet.objects.get(workspace=workspace, status=RuleSet.Status.PUBLISHED)
    assert published.rules["review"]["points"] == 80
    staff.close()
