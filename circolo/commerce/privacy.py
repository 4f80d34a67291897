"""Commerce's part of member exports and erasures, and the stores' privacy topics.

Registered with people.privacy when the app is ready: exports gain the member's orders (with
lines and refunds) and buying summaries; erasures scrub the member's orders (email, shipping
address, store customer id, refund reasons) while amounts, statuses and times stay, and
redact the raw webhook deliveries that mention the person.

`privacy_event_apply` answers the platforms' privacy topics (Shopify's customers/data_request,
customers/redact and shop/redact; other platforms may send the same events): each becomes a
DataRequest, and a customer we hold nothing about still gets a done request saying so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from circolo.commerce.connectors.base import Event
from circolo.commerce.models import (
    Delivery,
    ImportJob,
    MemberCommerce,
    Order,
    OrderLine,
    Refund,
    RefundLine,
    Store,
)
from circolo.commerce.schema import CustomerIn
from circolo.commerce.services import store_update
from circolo.core.models import Workspace
from circolo.people.models import DataRequest, Identity, IdentityKind, Member
from circolo.people.normalise import InputError, normalise_identity
from circolo.people.privacy import (
    DataSubject,
    data_request_erase,
    data_request_export,
    data_request_record,
    member_erase,
    register_eraser,
    register_export_section,
)

# What a redacted delivery's body becomes: still JSON, holding nothing.
REDACTED_BODY = '{"redacted": true}'
REDACTED_NOTE = "Personal data erased: the payload was removed."


def _time(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# --------------------------------------------------------------------------- export


def _order_json(order: Order) -> dict[str, Any]:
    return {
        "store": {"name": order.store.name, "platform": order.store.platform},
        "external_id": order.external_id,
        "number": order.number,
        "status": order.status,
        "currency": order.currency,
        "subtotal_minor": order.subtotal_minor,
        "discount_minor": order.discount_minor,
        "shipping_minor": order.shipping_minor,
        "tax_minor": order.tax_minor,
        "total_minor": order.total_minor,
        "refunded_minor": order.refunded_minor,
        "discount_codes": list(order.discount_codes),
        "placed_at": _time(order.placed_at),
        "paid_at": _time(order.paid_at),
        "fulfilled_at": _time(order.fulfilled_at),
        "cancelled_at": _time(order.cancelled_at),
        "email": order.email,
        "customer_external_id": order.customer_external_id,
        "shipping_address": order.shipping_address,
        "landing_site": order.landing_site,
        "referring_code": order.referring_code,
        "erased_at": _time(order.erased_at),
        "lines": [
            {
                "external_id": line.external_id,
                "sku": line.sku,
                "title": line.title,
                "quantity": line.quantity,
                "unit_price_minor": line.unit_price_minor,
                "discount_minor": line.discount_minor,
                "product_external_id": line.product_external_id,
                "variant_external_id": line.variant_external_id,
            }
            for line in order.lines.all()
        ],
        "refunds": [
            {
                "external_id": refund.external_id,
                "refunded_at": _time(refund.refunded_at),
                "amount_minor": refund.amount_minor,
                "currency": refund.currency,
                "reason": refund.reason,
                "lines": [
                    {
                        "line_external_id": rl.line_external_id,
                        "quantity": rl.quantity,
                        "amount_minor": rl.amount_minor,
                    }
                    for rl in refund.lines.all()
                ],
            }
            for refund in order.refunds.all()
        ],
    }


def commerce_export(*, subject: DataSubject) -> dict[str, Any]:
    """The member's orders with lines and refunds, and their buying summaries."""
    orders = (
        Order.objects.filter(workspace=subject.workspace, member_id__in=subject.member_ids)
        .select_related("store")
        .prefetch_related(
            Prefetch("lines", queryset=OrderLine.objects.order_by("pk")),
            Prefetch(
                "refunds",
                queryset=Refund.objects.order_by("refunded_at", "pk").prefetch_related(
                    Prefetch("lines", queryset=RefundLine.objects.order_by("pk"))
                ),
            ),
        )
        .order_by("placed_at", "pk")
    )
    summaries = MemberCommerce.objects.filter(
        workspace=subject.workspace, member_id__in=subject.member_ids
    ).order_by("currency", "member_id")
    return {
        "orders": [_order_json(order) for order in orders],
        "summaries": [
            {
                "currency": s.currency,
                "order_count": s.order_count,
                "net_spend_minor": s.net_spend_minor,
                "refunded_minor": s.refunded_minor,
                "first_order_at": _time(s.first_order_at),
                "last_order_at": _time(s.last_order_at),
            }
            for s in summaries
        ],
    }


# --------------------------------------------------------------------------- erasure


def _orders_scrub(orders: QuerySet[Order], now: dt.datetime) -> int:
    """Blank the personal fields of these orders and their refunds' reasons; amounts,
    statuses and times stay. Returns how many orders still held something."""
    dirty = orders.filter(
        Q(erased_at__isnull=True)
        | ~Q(email="")
        | ~Q(customer_external_id="")
        | ~Q(shipping_address={})
    )
    ids = list(dirty.values_list("pk", flat=True))
    if not ids:
        return 0
    Order.objects.filter(pk__in=ids).update(
        email="", shipping_address={}, customer_external_id="", updated_at=now
    )
    Order.objects.filter(pk__in=ids, erased_at__isnull=True).update(erased_at=now)
    Refund.objects.filter(order_id__in=ids).exclude(reason="").update(reason="")
    return len(ids)


def _deliveries_redact(deliveries: QuerySet[Delivery]) -> int:
    """Replace the raw body of these deliveries; ones not processed yet are not processed
    any more (their payload is gone). Returns how many were redacted."""
    dirty = deliveries.exclude(body=REDACTED_BODY)
    count = dirty.filter(status__in=[Delivery.Status.PROCESSED, Delivery.Status.IGNORED]).update(
        body=REDACTED_BODY
    )
    count += dirty.filter(status__in=[Delivery.Status.PENDING, Delivery.Status.FAILED]).update(
        body=REDACTED_BODY,
        status=Delivery.Status.IGNORED,
        next_attempt_at=None,
        last_error=REDACTED_NOTE,
    )
    return count


def _mentioning(workspace_id: int, strings: Iterable[str]) -> QuerySet[Delivery]:
    """Deliveries of the workspace whose raw body mentions one of these strings."""
    query = Q()
    for value in {s.strip() for s in strings if s and s.strip()}:
        query |= Q(body__icontains=value)
    if not query:
        return Delivery.objects.none()
    return Delivery.objects.filter(workspace_id=workspace_id).filter(query)


def _deliveries_redact_now_and_after_commit(
    deliveries_of: Callable[[], QuerySet[Delivery]],
) -> int:
    """Redact now, and once more after commit: the delivery being processed while this
    runs is saved again by its processor, body included, before the transaction ends."""
    count = _deliveries_redact(deliveries_of())
    transaction.on_commit(lambda: _deliveries_redact(deliveries_of()), robust=True)
    return count


def commerce_erase(*, subject: DataSubject) -> dict[str, int]:
    """Scrub the member's orders (and orders placed with its emails or store identities) and
    redact the deliveries mentioning its emails or phones."""
    workspace_id = subject.workspace.pk
    emails = subject.emails
    matched = Q(member_id__in=subject.member_ids) | Q(
        customer_identity_id__in=[i.pk for i in subject.identities]
    )
    for email in emails:
        matched |= Q(email__iexact=email)
    orders = Order.objects.filter(workspace_id=workspace_id).filter(matched)
    # Orders keep the email as the store sent it, which may differ in case from identities.
    strings = {*emails, *subject.phones, *(e for e in orders.values_list("email", flat=True))}
    now = timezone.now()
    return {
        "orders": _orders_scrub(orders, now),
        "deliveries": _deliveries_redact_now_and_after_commit(
            partial(_mentioning, workspace_id, sorted(strings))
        ),
        "import_files": _import_files_drop(workspace_id, strings),
    }


def _import_files_drop(workspace_id: int, strings: Iterable[str]) -> int:
    """Uploaded files of unfinished imports (finished ones are deleted already) that mention
    the person are deleted; their jobs stop with a message asking for a new upload."""
    from circolo.commerce.imports.runner import job_path

    wanted = [s.strip().lower().encode() for s in strings if s and s.strip()]
    if not wanted:
        return 0
    dropped = 0
    jobs = ImportJob.objects.filter(workspace_id=workspace_id).exclude(status=ImportJob.Status.DONE)
    for path_name in sorted(set(jobs.values_list("file_path", flat=True))):
        path = job_path(ImportJob(file_path=path_name))
        try:
            content = path.read_bytes().lower()
        except FileNotFoundError:
            continue
        if not any(value in content for value in wanted):
            continue
        # Deleted once the erasure commits (a rolled-back erasure keeps the upload).
        transaction.on_commit(partial(path.unlink, missing_ok=True), robust=True)
        jobs.filter(file_path=path_name).update(
            status=ImportJob.Status.FAILED,
            error=_(
                "The uploaded file was deleted by a data erasure request: upload the file "
                "again, without that person, to import it."
            ),
        )
        dropped += 1
    return dropped


register_export_section("commerce", commerce_export)
register_eraser(commerce_erase)


# --------------------------------------------------------------------------- privacy topics


def _customer_members(store: Store, customer: CustomerIn) -> list[Member]:
    """Live members holding one of the customer's identities from this store."""
    country = customer.country.upper() if len(customer.country) == 2 else None
    query = Q()
    for kind, raw in (
        (IdentityKind.CUSTOMER_ID, customer.external_id),
        (IdentityKind.EMAIL, customer.email),
        (IdentityKind.PHONE, customer.phone),
    ):
        if not raw:
            continue
        try:
            value = normalise_identity(kind, raw, country)
        except InputError:
            continue
        query |= Q(kind=kind, value=value)
    if not query:
        return []
    member_ids = set(
        Identity.objects.filter(workspace=store.workspace, channel=store.channel)
        .filter(query)
        .values_list("member_id", flat=True)
    )
    # Merges move identities to the survivor, so these are live members.
    return list(
        Member.objects.filter(
            workspace=store.workspace, pk__in=member_ids, merged_into__isnull=True
        ).order_by("pk")
    )


def _customer_orders(store: Store, customer: CustomerIn) -> QuerySet[Order]:
    """The store's orders placed by the customer as the store names it (id or email)."""
    query = Q()
    if customer.external_id:
        query |= Q(customer_external_id=customer.external_id)
    if customer.email.strip():
        query |= Q(email__iexact=customer.email.strip())
    if not query:
        return Order.objects.none()
    return Order.objects.filter(store=store).filter(query)


def _reference(customer: CustomerIn) -> str:
    return f"customer {customer.external_id}"[:200] if customer.external_id else ""


def _customer_export(store: Store, customer: CustomerIn) -> int:
    members = _customer_members(store, customer)
    for member in members:
        data_request_export(
            member=member,
            actor=None,
            source=store.platform,
            external_reference=_reference(customer),
        )
    if not members:
        data_request_record(
            workspace=store.workspace,
            kind=DataRequest.Kind.EXPORT,
            source=store.platform,
            external_reference=_reference(customer),
            summary={"nothing_held": True},
        )
    return len(members)


def _customer_erase(store: Store, customer: CustomerIn) -> int:
    members = _customer_members(store, customer)
    for member in members:
        # No reference is kept: once erased, nothing here should point back to the person.
        data_request_erase(
            member=member,
            actor=None,
            reason=f"{store.platform} customer erasure request",
            source=store.platform,
        )
    # Orders of the customer that no member of theirs holds (or arrived after an erasure).
    orders = _customer_orders(store, customer)
    strings = [customer.email, customer.phone, *orders.values_list("email", flat=True)]
    stray = _orders_scrub(orders, timezone.now())
    redacted = _deliveries_redact_now_and_after_commit(
        partial(_mentioning, store.workspace_id, sorted(set(strings)))
    )
    if not members:
        data_request_record(
            workspace=store.workspace,
            kind=DataRequest.Kind.ERASE,
            source=store.platform,
            summary={
                "nothing_held": not (stray or redacted),
                "orders": stray,
                "deliveries": redacted,
            },
        )
    return len(members)


def store_erase(*, store: Store, reason: str) -> dict[str, int]:
    """Erase what a store brought in: members known only through it are erased, its orders
    scrubbed, its identities and raw deliveries' payloads removed, its credentials cleared
    and the store disconnected. Amounts, statuses, times and activity counts stay."""
    workspace: Workspace = store.workspace
    channel = store.channel
    here = set(
        Identity.objects.filter(workspace=workspace, channel=channel).values_list(
            "member_id", flat=True
        )
    )
    elsewhere = set(
        Identity.objects.filter(workspace=workspace, member_id__in=here)
        .exclude(channel=channel)
        .values_list("member_id", flat=True)
    )
    only_here = Member.objects.filter(
        workspace=workspace, pk__in=here - elsewhere, merged_into__isnull=True
    ).order_by("pk")
    counts = {"members": 0, "orders": 0, "identities": 0, "deliveries": 0}
    for member in only_here:
        erasure = member_erase(member=member, actor=None, reason=reason)
        counts["members"] += 1
        for key in ("orders", "identities", "deliveries"):
            counts[key] += erasure.counts.get(key, 0)
    counts["orders"] += _orders_scrub(Order.objects.filter(store=store), timezone.now())
    _total, deleted = Identity.objects.filter(workspace=workspace, channel=channel).delete()
    counts["identities"] += deleted.get(Identity._meta.label, 0)
    counts["deliveries"] += _deliveries_redact_now_and_after_commit(
        partial(Delivery.objects.filter, store_id=store.pk)
    )
    store_update(
        store=store,
        actor=None,
        credentials={},
        webhook_secret="",
        status=Store.Status.DISCONNECTED,
    )
    return counts


def privacy_event_apply(*, store: Store, event: Event) -> dict[str, Any]:
    """Answer a store's privacy event: exports and erasures per customer, or the whole
    store's erasure; each recorded as a DataRequest. Returns counts for the delivery."""
    outcome: dict[str, Any] = {}

    def add(key: str, number: int) -> None:
        outcome[key] = outcome.get(key, 0) + number

    for customer in event.export_customers:
        add("privacy:export_members", _customer_export(store, customer))
        add("privacy:export_requests", 1)
    for customer in event.erase_customers:
        add("privacy:erased_members", _customer_erase(store, customer))
        add("privacy:erase_requests", 1)
    if event.shop_redact:
        summary = store_erase(store=store, reason=f"{store.platform} shop erasure request")
        data_request_record(
            workspace=store.workspace,
            kind=DataRequest.Kind.ERASE,
            source=store.platform,
            external_reference=store.external_id,
            summary={"shop": True, **summary},
        )
        add("privacy:shop_erased", 1)
    return outcome
