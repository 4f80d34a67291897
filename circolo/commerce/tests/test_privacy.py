"""The stores' privacy topics and commerce's part of member exports and erasures."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any

import pytest
from django.apps import apps
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from circolo.activity.models import Activity, DailyRollup, MemberScore
from circolo.commerce.bulk import orders_upsert_bulk
from circolo.commerce.connectors.base import Event
from circolo.commerce.models import Delivery, MemberCommerce, Order, Refund, Store
from circolo.commerce.privacy import REDACTED_BODY, privacy_event_apply
from circolo.commerce.schema import CustomerIn, LineIn, OrderIn, RefundIn, RefundLineIn
from circolo.commerce.services import order_upsert
from circolo.commerce.webhooks import event_apply
from circolo.people.models import DataRequest, Identity, IdentityKind, Member
from circolo.people.privacy import member_erase, member_export
from circolo.testing.commerce import make_store
from circolo.testing.factories import IdentityFactory

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)
ADA = CustomerIn(
    external_id="cust-ada-7001",
    email="Ada.Lovelace@Example.com",
    phone="+393331234567",
    first_name="Ada",
    last_name="Lovelace",
    city="Pontremoli",
    country="IT",
)
ADDRESS = {
    "name": "Ada Lovelace",
    "address1": "Via dei Calzaiuoli 7",
    "city": "Pontremoli",
    "zip": "54027",
    "phone": "+393331234567",
}
BRUNO = CustomerIn(
    external_id="cust-bruno-7002", email="bruno@example.com", first_name="Bruno", last_name="Rossi"
)
# Everything that identifies Ada: none of it may be left anywhere after her erasure.
ADA_TRACES = (
    "lovelace",
    "calzaiuoli",
    "pontremoli",
    "393331234567",
    "cust-ada-7001",
    "mug cracked",
)


def order(external_id: str, customer: CustomerIn, **over: Any) -> OrderIn:
    base: dict[str, Any] = {
        "external_id": external_id,
        "number": f"#{external_id}",
        "currency": "EUR",
        "placed_at": T0,
        "updated_at": T0,
        "paid_at": T0,
        "status": "paid",
        "subtotal_minor": 5000,
        "shipping_minor": 500,
        "total_minor": 5500,
        "customer": customer,
        "shipping_address": ADDRESS if customer is ADA else {"city": "Torino"},
        "lines": (
            LineIn(external_id=f"{external_id}-1", quantity=2, unit_price_minor=2000, sku="MUG"),
            LineIn(external_id=f"{external_id}-2", quantity=1, unit_price_minor=1000, sku="TEA"),
        ),
    }
    base.update(over)
    return OrderIn(**base)


@pytest.fixture
def store(workspace: Any) -> Store:
    return make_store(
        workspace,
        external_id="bottega.myshopify.com",
        credentials={"access_token": "shpat_secret"},
    )


@pytest.fixture
def shop(workspace: Any, store: Store, django_capture_on_commit_callbacks: Any) -> Store:
    """Ada with two orders (one partly refunded), Bruno with one; raw deliveries of both."""
    refund = RefundIn(
        external_id="R1",
        order_external_id="1001",
        refunded_at=T0 + dt.timedelta(days=2),
        amount_minor=2000,
        currency="EUR",
        reason="Ada Lovelace said the mug cracked",
        lines=(RefundLineIn(line_external_id="1001-1", quantity=1, amount_minor=2000),),
    )
    with django_capture_on_commit_callbacks(execute=True):
        order_upsert(store=store, order=order("1001", ADA, refunds=(refund,)))
        order_upsert(
            store=store,
            order=order("1002", ADA, placed_at=T0 + dt.timedelta(days=5), total_minor=3000),
        )
        order_upsert(store=store, order=order("2001", BRUNO))
    for key, customer, status in (
        ("d-ada-1", ADA, Delivery.Status.PROCESSED),
        ("d-ada-2", ADA, Delivery.Status.FAILED),
        ("d-bruno", BRUNO, Delivery.Status.PROCESSED),
    ):
        Delivery.objects.create(
            workspace=workspace,
            store=store,
            topic="orders/updated",
            dedupe_key=key,
            body=json.dumps(
                {
                    "email": customer.email,
                    "customer": {"id": customer.external_id, "last_name": customer.last_name},
                    "shipping_address": ADDRESS if customer is ADA else {},
                }
            ),
            received_at=timezone.now(),
            status=status,
            next_attempt_at=timezone.now() if status == Delivery.Status.FAILED else None,
        )
    return store


def traces(strings: tuple[str, ...]) -> list[str]:
    """Where in the whole database any of these strings still appears (case-insensitive)."""
    found = []
    for model in apps.get_models():
        for row in model._default_manager.values():
            text = json.dumps(row, default=str, ensure_ascii=False).lower()
            found.extend(f"{model._meta.label} {row.get('id')}: {s}" for s in strings if s in text)
    return found


def totals(workspace: Any) -> dict[str, Any]:
    """The anonymous facts every erasure keeps."""
    orders = Order.objects.filter(workspace=workspace)
    return {
        "orders": orders.count(),
        "sums": orders.aggregate(Sum("total_minor"), Sum("refunded_minor"), Sum("subtotal_minor")),
        "statuses": sorted(orders.values_list("external_id", "status", "placed_at", "paid_at")),
        "refunds": sorted(Refund.objects.values_list("external_id", "amount_minor", "order_id")),
        "kinds": Counter(
            Activity.objects.filter(workspace=workspace).values_list("kind", flat=True)
        ),
        "daily": sorted(
            DailyRollup.objects.filter(workspace=workspace).values_list(
                "day", "kind", "count", "weight_sum"
            )
        ),
        "scores": sorted(MemberScore.objects.values_list("member_id", "activity_count")),
        "spend": sorted(
            MemberCommerce.objects.values_list("member_id", "order_count", "net_spend_minor")
        ),
    }


def ada() -> Member:
    return Identity.objects.get(kind=IdentityKind.CUSTOMER_ID, value="cust-ada-7001").member


def apply(store: Store, event: Event, capture: Any) -> dict[str, Any]:
    """Apply an event as delivery processing does, after-commit work included."""
    with capture(execute=True):
        return event_apply(store=store, event=event)


# --------------------------------------------------------------------------- export


def test_data_request_records_an_export_with_the_orders(
    shop, workspace, django_capture_on_commit_callbacks
):
    member = ada()
    outcome = apply(
        shop,
        Event(export_customers=(CustomerIn(external_id="cust-ada-7001"),)),
        django_capture_on_commit_callbacks,
    )
    assert outcome == {"privacy:export_members": 1, "privacy:export_requests": 1}
    request = DataRequest.objects.get()
    assert (request.kind, request.source, request.status) == ("export", "shopify", "done")
    assert request.member == member
    assert request.external_reference == "customer cust-ada-7001"
    orders = request.export["commerce"]["orders"]
    assert [o["number"] for o in orders] == ["#1001", "#1002"]
    first = orders[0]
    assert first["email"] == "Ada.Lovelace@Example.com"
    assert first["shipping_address"]["address1"] == "Via dei Calzaiuoli 7"
    assert [(ln["sku"], ln["quantity"]) for ln in first["lines"]] == [("MUG", 2), ("TEA", 1)]
    assert first["refunds"][0]["amount_minor"] == 2000
    assert first["refunds"][0]["lines"][0]["line_external_id"] == "1001-1"
    assert request.export["commerce"]["summaries"] == [
        {
            "currency": "EUR",
            "order_count": 2,
            "net_spend_minor": 6500,
            "refunded_minor": 2000,
            "first_order_at": T0.isoformat(),
            "last_order_at": (T0 + dt.timedelta(days=5)).isoformat(),
        }
    ]
    assert "bruno" not in json.dumps(request.export).lower()
    json.dumps(request.export)  # stored as it can be downloaded


def test_export_finds_the_customer_by_email_or_phone(shop, django_capture_on_commit_callbacks):
    for customer in (
        CustomerIn(email="ada.lovelace@example.com"),
        CustomerIn(phone="+39 333 123 4567", country="IT"),
    ):
        apply(shop, Event(export_customers=(customer,)), django_capture_on_commit_callbacks)
    members = set(DataRequest.objects.values_list("member_id", flat=True))
    assert members == {ada().pk}


def test_unknown_customer_still_gets_a_done_request(shop, django_capture_on_commit_callbacks):
    nobody = CustomerIn(external_id="cust-none", email="nobody@example.com")
    apply(
        shop,
        Event(export_customers=(nobody,), erase_customers=(nobody,)),
        django_capture_on_commit_callbacks,
    )
    requests = {r.kind: r for r in DataRequest.objects.all()}
    assert set(requests) == {"export", "erase"}
    for request in requests.values():
        assert request.status == DataRequest.Status.DONE
        assert request.member is None
        assert request.summary["nothing_held"] is True
    assert requests["export"].export is None


def test_a_customer_of_another_store_is_not_found(
    shop, workspace, django_capture_on_commit_callbacks
):
    other = make_store(workspace, name="Second shop")
    apply(
        other,
        Event(erase_customers=(CustomerIn(external_id="cust-ada-7001"),)),
        django_capture_on_commit_callbacks,
    )
    assert DataRequest.objects.get().summary["nothing_held"] is True
    assert ada().display_name == "Ada Lovelace"


# --------------------------------------------------------------------------- erasure


def test_customer_redact_leaves_no_trace_and_keeps_totals(
    shop, workspace, django_capture_on_commit_callbacks
):
    before = totals(workspace)
    assert traces(ADA_TRACES), "the fixture must hold Ada's data first"
    member = ada()
    redact = CustomerIn(external_id="cust-ada-7001", email="ada.lovelace@example.com")

    outcome = apply(shop, Event(erase_customers=(redact,)), django_capture_on_commit_callbacks)

    assert outcome == {"privacy:erased_members": 1, "privacy:erase_requests": 1}
    assert traces(ADA_TRACES) == []
    assert traces(("ada.lovelace@example.com",)) == []
    assert totals(workspace) == before
    member.refresh_from_db()
    assert member.erased_at is not None
    for row in Order.objects.filter(external_id__in=["1001", "1002"]):
        assert (row.email, row.shipping_address, row.customer_external_id) == ("", {}, "")
        assert row.erased_at is not None
        assert row.member == member  # the anonymous member keeps its totals
    assert Refund.objects.get().reason == ""
    request = DataRequest.objects.get()
    assert (request.kind, request.source, request.status) == ("erase", "shopify", "done")
    assert request.external_reference == ""
    assert request.summary["orders"] == 2
    # The raw deliveries that named her are gone; one not yet processed will never be.
    failed = Delivery.objects.get(dedupe_key="d-ada-2")
    assert failed.body == REDACTED_BODY
    assert failed.status == Delivery.Status.IGNORED
    assert failed.next_attempt_at is None
    assert Delivery.objects.get(dedupe_key="d-ada-1").status == Delivery.Status.PROCESSED
    # Bruno is untouched.
    bruno = Order.objects.get(external_id="2001")
    assert bruno.email == "bruno@example.com"
    assert bruno.erased_at is None
    assert "bruno@example.com" in Delivery.objects.get(dedupe_key="d-bruno").body


def test_customer_redact_twice_changes_nothing_more(
    shop, workspace, django_capture_on_commit_callbacks
):
    redact = Event(erase_customers=(CustomerIn(external_id="cust-ada-7001"),))
    apply(shop, redact, django_capture_on_commit_callbacks)
    erased = list(Order.objects.order_by("pk").values_list("erased_at", "updated_at"))
    after_first = totals(workspace)
    apply(shop, redact, django_capture_on_commit_callbacks)
    assert totals(workspace) == after_first
    assert list(Order.objects.order_by("pk").values_list("erased_at", "updated_at")) == erased
    second = DataRequest.objects.order_by("pk").last()
    assert second.summary == {"nothing_held": True, "orders": 0, "deliveries": 0}


def test_the_delivery_being_processed_is_redacted_after_commit(
    shop, workspace, django_capture_on_commit_callbacks
):
    """delivery_process saves the delivery (body included) after the event is applied."""
    body = json.dumps({"customer": {"id": "cust-ada-7001", "email": "ada.lovelace@example.com"}})
    delivery = Delivery.objects.create(
        workspace=workspace,
        store=shop,
        topic="customers/redact",
        dedupe_key="redact-1",
        body=body,
        received_at=timezone.now(),
    )
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        locked = Delivery.objects.select_for_update().get(pk=delivery.pk)
        event_apply(
            store=shop,
            event=Event(
                erase_customers=(
                    CustomerIn(external_id="cust-ada-7001", email="ada.lovelace@example.com"),
                )
            ),
        )
        locked.status = Delivery.Status.PROCESSED
        locked.save()
    delivery.refresh_from_db()
    assert delivery.body == REDACTED_BODY
    assert delivery.status == Delivery.Status.PROCESSED


def test_staff_erasure_scrubs_the_orders_too(shop, owner, django_capture_on_commit_callbacks):
    member = ada()
    export = member_export(member=member)
    assert [o["number"] for o in export["commerce"]["orders"]] == ["#1001", "#1002"]
    with django_capture_on_commit_callbacks(execute=True):
        erasure = member_erase(member=member, actor=owner.user, reason="Asked in the shop")
    assert erasure.counts["orders"] == 2
    assert erasure.counts["deliveries"] == 2
    assert traces(ADA_TRACES) == []
    export = member_export(member=member)
    assert [o["email"] for o in export["commerce"]["orders"]] == ["", ""]
    assert [o["total_minor"] for o in export["commerce"]["orders"]] == [5500, 3000]


def test_orders_placed_with_the_email_are_scrubbed_even_without_the_member(
    shop, workspace, django_capture_on_commit_callbacks
):
    """An order left on another member (a guest checkout never merged) is still hers."""
    stray = Order.objects.get(external_id="2001")
    Order.objects.filter(pk=stray.pk).update(email="ADA.LOVELACE@example.com")
    apply(
        shop,
        Event(erase_customers=(CustomerIn(external_id="cust-ada-7001"),)),
        django_capture_on_commit_callbacks,
    )
    stray.refresh_from_db()
    assert stray.email == ""
    assert stray.erased_at is not None


# --------------------------------------------------------------------------- shop/redact


def test_shop_redact_erases_what_the_store_brought(
    shop, workspace, django_capture_on_commit_callbacks
):
    bruno = Identity.objects.get(value="cust-bruno-7002").member
    IdentityFactory(member=bruno, channel="forum", kind=IdentityKind.HANDLE, value="brunor")
    member = ada()
    before = totals(workspace)

    outcome = apply(shop, Event(shop_redact=True), django_capture_on_commit_callbacks)

    assert outcome == {"privacy:shop_erased": 1}
    assert traces(ADA_TRACES) == []
    assert totals(workspace) == before
    member.refresh_from_db()
    assert member.erased_at is not None
    # Bruno is also known elsewhere: he stays, without anything from the store.
    bruno.refresh_from_db()
    assert bruno.erased_at is None
    assert bruno.display_name == "Bruno Rossi"
    assert list(Identity.objects.filter(member=bruno).values_list("value", flat=True)) == ["brunor"]
    assert not Identity.objects.filter(channel=shop.channel).exists()
    assert not Order.objects.exclude(email="").exists()
    assert not Order.objects.filter(erased_at__isnull=True).exists()
    assert set(Delivery.objects.values_list("body", flat=True)) == {REDACTED_BODY}
    shop.refresh_from_db()
    assert shop.credentials == {}
    assert shop.webhook_secret == ""
    assert shop.status == Store.Status.DISCONNECTED
    request = DataRequest.objects.get(member__isnull=True)
    assert request.summary == {
        "shop": True,
        "members": 1,
        "orders": 3,
        "identities": 5,
        "deliveries": 3,
    }
    assert request.external_reference == "bottega.myshopify.com"


def test_privacy_event_apply_ignores_an_empty_event(shop):
    assert privacy_event_apply(store=shop, event=Event()) == {}
    assert not DataRequest.objects.exists()


@pytest.mark.parametrize("path", ["one order", "bulk"])
def test_a_late_update_of_an_erased_order_brings_no_person_back(
    shop, owner, path, django_capture_on_commit_callbacks
):
    member = ada()
    with django_capture_on_commit_callbacks(execute=True):
        member_erase(member=member, actor=owner.user, reason="Asked in the shop")
        late = order("1001", ADA, updated_at=T0 + dt.timedelta(days=9), status="fulfilled")
        if path == "bulk":
            orders_upsert_bulk(store=shop, orders=[late])
        else:
            order_upsert(store=shop, order=late)
    row = Order.objects.get(store=shop, external_id="1001")
    assert row.base_status == "fulfilled"  # the update itself applies
    assert (row.email, row.shipping_address, row.customer_external_id) == ("", {}, "")
    assert row.member == member  # still the anonymous member, no live person linked
    assert traces(ADA_TRACES) == []
