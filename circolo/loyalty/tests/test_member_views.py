"""The member's rewards pages: balance, pending orders, catalogue and redeeming, codes,
history, birthday; signed-out visitors, other workspaces and bad input."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.test import Client
from django.utils import timezone

from circolo.commerce.schema import CustomerIn, LineIn, OrderIn
from circolo.commerce.services import order_upsert
from circolo.community.services import member_for_user
from circolo.loyalty import ledger
from circolo.loyalty.models import Reason, Redemption, Reward
from circolo.loyalty.rewards import pool_codes_add
from circolo.testing.commerce import make_store
from circolo.testing.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shopper(workspace: Any) -> tuple[Client, Any]:
    user = UserFactory(email="ada@example.com")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    client = Client()
    client.force_login(user)
    return client, member_for_user(workspace=workspace, user=user)


def give(member: Any, points: int) -> None:
    ledger.movements_post(
        workspace_id=member.workspace_id,
        items=[
            ledger.transfer(
                key=f"gift:{member.pk}:{points}",
                reason=Reason.BONUS,
                member_id=member.pk,
                source=ledger.ISSUANCE,
                target=ledger.member_account(member.pk),
                points=points,
                rule="birthday",
            )
        ],
    )


def reward(workspace: Any, cost: int = 300) -> Reward:
    row = Reward.objects.create(
        workspace=workspace,
        name="Five off",
        names={"it": "Cinque euro di sconto"},
        kind=Reward.Kind.AMOUNT_OFF,
        cost_points=cost,
        amount_minor=500,
        currency="EUR",
        code_source=Reward.CodeSource.POOL,
    )
    pool_codes_add(reward=row, codes=["WELCOME-1", "WELCOME-2"], actor=None)
    return row


def test_signed_out_visitors_are_sent_to_sign_in(client, workspace) -> None:
    response = client.get(f"/c/{workspace.slug}/rewards/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert client.post(f"/c/{workspace.slug}/rewards/redeem/1/").status_code == 302


def test_a_new_member_sees_empty_states(workspace, shopper) -> None:
    client, _member = shopper
    page = client.get(f"/c/{workspace.slug}/rewards/").content.decode()
    for empty in ("history", "catalogue", "codes", "badges"):
        assert f'data-empty="{empty}"' in page
    assert 'data-balance="0"' in page and 'data-pending="0"' in page


def test_an_order_shows_as_pending_with_its_explanation(
    workspace, shopper, django_capture_on_commit_callbacks
) -> None:
    client, _member = shopper
    store = make_store(workspace)
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        order_upsert(
            store=store,
            order=OrderIn(
                external_id="9001",
                number="#9001",
                currency="EUR",
                placed_at=now,
                updated_at=now,
                paid_at=now,
                status="paid",
                shipping_minor=900,
                total_minor=5_900,
                customer=CustomerIn(external_id="c1", email="ada@example.com"),
                lines=(LineIn(external_id="1", quantity=2, unit_price_minor=2_500),),
            ),
        )
    page = client.get(f"/c/{workspace.slug}/rewards/").content.decode()
    # 50 euros of goods (shipping left out) and the first-purchase bonus.
    assert 'data-pending="250"' in page and 'data-pending-order="#9001"' in page
    assert "Order #9001: points for EUR 50.00 of goods" in page
    assert "first purchase" in page


def test_redeeming_from_the_page_gives_the_code_once(workspace, shopper) -> None:
    client, member = shopper
    give(member, 700)
    offer = reward(workspace)
    url = f"/c/{workspace.slug}/rewards/redeem/{offer.pk}/"
    first = client.post(url, {"request_key": "page-1"}, follow=True)
    assert "Here is your code: WELCOME-1" in first.content.decode()
    client.post(url, {"request_key": "page-1"})  # a double click
    assert Redemption.objects.filter(member=member).count() == 1
    page = client.get(f"/c/{workspace.slug}/rewards/").content.decode()
    assert "<code data-code>WELCOME-1</code>" in page and 'data-balance="400"' in page


def test_redeeming_without_enough_points_says_so(workspace, shopper) -> None:
    client, member = shopper
    give(member, 100)
    offer = reward(workspace)
    response = client.post(
        f"/c/{workspace.slug}/rewards/redeem/{offer.pk}/", {"request_key": "k"}, follow=True
    )
    assert "You need 300 points for this reward and have 100." in response.content.decode()
    assert not Redemption.objects.exists()


def test_another_workspaces_reward_is_not_found(workspace, other_workspace, shopper) -> None:
    client, member = shopper
    give(member, 1_000)
    theirs = reward(other_workspace)
    assert client.post(f"/c/{workspace.slug}/rewards/redeem/{theirs.pk}/").status_code == 404
    assert client.get("/c/no-such-place/rewards/").status_code == 404


def test_history_pages_and_speaks_the_members_language(workspace, shopper) -> None:
    client, member = shopper
    for n in range(30):
        give(member, n + 1)
    page = client.get(f"/c/{workspace.slug}/rewards/history/?page=2").content.decode()
    assert page.count("data-movement=") == 5
    italian = client.get(
        f"/c/{workspace.slug}/rewards/", HTTP_ACCEPT_LANGUAGE="it"
    ).content.decode()
    assert "Compleanno" in italian or "I miei premi" in italian


def test_birthday_form_keeps_it_and_explains_errors(workspace, shopper) -> None:
    client, _member = shopper
    url = f"/c/{workspace.slug}/rewards/birthday/"
    bad = client.post(url, {"day": "31", "month": "2"}, follow=True).content.decode()
    assert "That month has no such day." in bad
    assert "Choose the day" in client.post(url, {"day": "x"}, follow=True).content.decode()
    ok = client.post(url, {"day": "14", "month": "7"}, follow=True).content.decode()
    assert "Birthday saved." in ok
    again = client.post(url, {"day": "15", "month": "7"}, follow=True).content.decode()
    assert "once a year" in again


def test_the_rewards_page_query_count_stays_flat(
    workspace, shopper, django_assert_max_num_queries
) -> None:
    client, member = shopper
    reward(workspace)
    for n in range(40):
        give(member, n + 1)
    with django_assert_max_num_queries(45):
        assert client.get(f"/c/{workspace.slug}/rewards/").status_code == 200


def test_pending_points_move_to_points_when_the_window_closes(
    workspace, shopper, django_capture_on_commit_callbacks
) -> None:
    from circolo.loyalty.orders import earnings_approve_due

    client, _member = shopper
    store = make_store(workspace)
    paid = timezone.now() - dt.timedelta(days=31)
    with django_capture_on_commit_callbacks(execute=True):
        order_upsert(
            store=store,
            order=OrderIn(
                external_id="1",
                number="#1",
                currency="EUR",
                placed_at=paid,
                updated_at=paid,
                paid_at=paid,
                status="paid",
                total_minor=1_000,
                customer=CustomerIn(external_id="c1", email="ada@example.com"),
                lines=(LineIn(external_id="1", quantity=1, unit_price_minor=1_000),),
            ),
        )
    assert earnings_approve_due() == 1
    page = client.get(f"/c/{workspace.slug}/rewards/").content.decode()
    assert 'data-balance="210"' in page and 'data-pending="0"' in page
    assert "the return window closed" in page
