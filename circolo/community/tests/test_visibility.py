"""Who reads which space: public, members only, and segments (by tag or by product
bought), sub-groups inside their parent, and nothing across workspaces."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from circolo.commerce.schema import CustomerIn, LineIn, OrderIn
from circolo.commerce.services import order_upsert
from circolo.community.selectors import readable_spaces, readable_threads, space_readable
from circolo.community.services import NotFound, space_create, thread_create
from circolo.core.models import Role
from circolo.people.models import Identity, MemberTag
from circolo.testing.commerce import make_store
from circolo.testing.factories import MemberFactory, UserFactory, WorkspaceRoleFactory

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def spaces(workspace: Any) -> dict[str, Any]:
    made = {
        "public": space_create(workspace=workspace, actor=None, name="Public"),
        "members": space_create(
            workspace=workspace, actor=None, name="Members", visibility="members"
        ),
        "vip": space_create(
            workspace=workspace,
            actor=None,
            name="VIP",
            visibility="segment",
            segment={"tags": ["VIP"]},
        ),
        "owners": space_create(
            workspace=workspace,
            actor=None,
            name="Moka owners",
            visibility="segment",
            segment={"skus": ["MOKA-3"]},
        ),
    }
    made["owners_sub"] = space_create(
        workspace=workspace, actor=None, name="Moka tips", parent=made["owners"]
    )
    return made


def names(workspace: Any, member: Any) -> set[str]:
    return {space.name for space in readable_spaces(workspace.pk, member)}


def test_visitor_member_tagged_buyer_and_staff(workspace, spaces) -> None:
    assert names(workspace, None) == {"Public"}
    plain = MemberFactory(workspace=workspace)
    assert names(workspace, plain) == {"Public", "Members"}
    vip = MemberFactory(workspace=workspace)
    MemberTag.objects.create(workspace=workspace, member=vip, tag="vip")
    assert names(workspace, vip) == {"Public", "Members", "VIP"}

    buyer = MemberFactory(workspace=workspace)
    store = make_store(workspace, platform="shopify", external_id="aurora.myshopify.com")
    Identity.objects.create(
        workspace=workspace, member=buyer, channel=store.channel, kind="customer_id", value="c1"
    )
    order_upsert(
        store=store,
        order=OrderIn(
            external_id="1",
            currency="EUR",
            placed_at=T0,
            updated_at=T0,
            status="paid",
            total_minor=2990,
            customer=CustomerIn(external_id="c1"),
            lines=(LineIn(external_id="l1", sku="MOKA-3", quantity=1, unit_price_minor=2990),),
        ),
    )
    # A line without a linked product is not a verified purchase yet: link the product.
    from circolo.commerce.models import OrderLine, Product

    product = Product.objects.create(
        workspace=workspace, store=store, external_id="p1", title={"en": "Moka"}
    )
    OrderLine.objects.filter(order__store=store).update(product=product)
    assert names(workspace, buyer) == {"Public", "Members", "Moka owners", "Moka tips"}

    user = UserFactory()
    WorkspaceRoleFactory(workspace=workspace, user=user, role=Role.MODERATOR)
    staff = MemberFactory(workspace=workspace, user=user)
    assert len(names(workspace, staff)) == 5


def test_sub_group_is_closed_when_its_parent_is(workspace, spaces) -> None:
    plain = MemberFactory(workspace=workspace)
    assert not space_readable(spaces["owners_sub"], plain)
    assert not space_readable(spaces["owners_sub"], None)


def test_threads_of_unreadable_spaces_never_list_and_cannot_be_written(workspace, spaces):
    staff_user = UserFactory()
    WorkspaceRoleFactory(workspace=workspace, user=staff_user, role=Role.MANAGER)
    staff = MemberFactory(workspace=workspace, user=staff_user)
    secret = thread_create(space=spaces["vip"], author=staff, title="Secret sale", body="shh")
    open_thread = thread_create(space=spaces["public"], author=staff, title="Hello", body="hi")
    plain = MemberFactory(workspace=workspace)
    assert list(readable_threads(workspace.pk, plain)) == [open_thread]
    assert set(readable_threads(workspace.pk, staff)) == {secret, open_thread}
    with pytest.raises(NotFound):
        thread_create(space=spaces["vip"], author=plain, title="In?", body="let me in")


def test_no_space_of_another_workspace_is_readable(workspace, other_workspace, spaces) -> None:
    stranger = MemberFactory(workspace=other_workspace)
    assert not space_readable(spaces["public"], stranger)
    assert readable_spaces(other_workspace.pk, stranger) == []
