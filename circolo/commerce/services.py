"""Writes of commerce data: stores, customers, products, orders and refunds.

Every connector and the file import end here, with the platform-neutral records of
schema.py. The writes are idempotent and commutative: applying the same records again, or in
another order, ends in the same state. Orders keep the newest state by the platform's
last-modified time; refunds are immutable facts that may arrive before their order and link
to it when it comes. Orders, payments, fulfilments, cancellations and refunds each record one
activity through the activity stream.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, F, Max, Min, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from circolo.activity.services import ActivityIn, activity_record_bulk
from circolo.commerce.models import (
    MemberCommerce,
    Order,
    OrderLine,
    OrderStatus,
    Platform,
    Product,
    ProductVariant,
    Refund,
    RefundLine,
    Store,
)
from circolo.commerce.schema import (
    CustomerIn,
    LineIn,
    OrderIn,
    PayloadError,
    ProductIn,
    RefundIn,
)
from circolo.core.audit import audit_record
from circolo.core.models import Workspace
from circolo.core.services import ISO_4217_CODES
from circolo.people.models import Identity, IdentityKind, Member
from circolo.people.normalise import InputError, normalise_identity
from circolo.people.services import IdentityIn, MemberAttrs, ResolveItem, member_resolve_many

# Activity source of everything commerce records; source ids start with the store id.
ACTIVITY_SOURCE = "commerce"
ORDER_EVENT_KINDS = {
    "placed": "order",
    "paid": "order_paid",
    "fulfilled": "order_fulfilled",
    "cancelled": "order_cancelled",
}
BASE_STATUSES = frozenset({OrderStatus.PENDING, OrderStatus.PAID, OrderStatus.FULFILLED})
# Attempts at creating a row another writer may create at the same moment.
UPSERT_ATTEMPTS = 3
# Values per IN (...) lookup: stays under SQLite's bound on parameters.
IN_BATCH = 500

CREATED, UPDATED, UNCHANGED, STALE = "created", "updated", "unchanged", "stale"


class StoreError(ValueError):
    """Store settings that cannot be saved; `errors` maps each field to a message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


# --------------------------------------------------------------------------- stores


STORE_FIELDS = frozenset({"name", "currency", "api_url", "external_id", "status"})


def _store_errors(fields: dict[str, Any]) -> dict[str, str]:
    errors: dict[str, str] = {}
    if "name" in fields and not str(fields["name"]).strip():
        errors["name"] = _("Give the store a name.")
    if "currency" in fields and str(fields["currency"]).upper() not in ISO_4217_CODES:
        errors["currency"] = _("Use a three-letter ISO 4217 currency code, such as EUR or USD.")
    if "platform" in fields and fields["platform"] not in Platform.values:
        errors["platform"] = _("Choose one of the supported platforms.")
    return errors


def store_create(
    *,
    workspace: Workspace,
    platform: str,
    name: str,
    currency: str,
    actor: Any,
    api_url: str = "",
    external_id: str = "",
    credentials: dict[str, Any] | None = None,
    webhook_secret: str = "",
) -> Store:
    """A new store connection; secrets are sealed before they are stored. Audited."""
    errors = _store_errors({"platform": platform, "name": name, "currency": currency})
    if errors:
        raise StoreError(errors)
    store = Store(
        workspace=workspace,
        platform=platform,
        name=name.strip(),
        currency=currency.upper(),
        api_url=api_url.strip(),
        external_id=external_id.strip(),
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    store.credentials = credentials or {}
    store.webhook_secret = webhook_secret
    with transaction.atomic():
        store.save()
        audit_record(
            workspace=workspace,
            actor=actor,
            action="store.create",
            target=store,
            data={"platform": platform, "name": store.name},
        )
    return store


def store_update(
    *,
    store: Store,
    actor: Any,
    credentials: dict[str, Any] | None = None,
    webhook_secret: str | None = None,
    **fields: Any,
) -> Store:
    """Change a store's settings; secrets given replace the stored ones. Audited (no secrets)."""
    unknown = set(fields) - STORE_FIELDS
    if unknown:
        raise StoreError({name: _("This field cannot be changed.") for name in sorted(unknown)})
    errors = _store_errors(fields)
    if "status" in fields and fields["status"] not in Store.Status.values:
        errors["status"] = _("Choose a valid status.")
    if errors:
        raise StoreError(errors)
    changed = []
    for name, value in fields.items():
        value = value.strip() if isinstance(value, str) else value
        if name == "currency":
            value = value.upper()
        if getattr(store, name) != value:
            setattr(store, name, value)
            changed.append(name)
    if credentials is not None:
        store.credentials = credentials
        changed.append("credentials_sealed")
    if webhook_secret is not None:
        store.webhook_secret = webhook_secret
        changed.append("webhook_secret_sealed")
    if not changed:
        return store
    with transaction.atomic():
        store.save(update_fields=changed)
        audit_record(
            workspace=store.workspace,
            actor=actor,
            action="store.update",
            target=store,
            data={"fields": sorted(name.removesuffix("_sealed") for name in changed)},
        )
    return store


def store_rejection_count(*, store_id: int) -> None:
    """Count a delivery refused for its signature: the count is all that is kept of it."""
    Store.objects.filter(pk=store_id).update(
        rejected_deliveries=F("rejected_deliveries") + 1, rejected_last_at=timezone.now()
    )


# --------------------------------------------------------------------------- customers


@dataclass
class Customer:
    """Who a store customer is here: the member and the identity the order hangs on."""

    member: Member
    identity: Identity


def _customer_identities(store: Store, customer: CustomerIn) -> list[IdentityIn]:
    identities = []
    if customer.external_id:
        # The store's own id is authoritative inside that store.
        identities.append(
            IdentityIn(
                channel=store.channel,
                kind=IdentityKind.CUSTOMER_ID,
                value=customer.external_id,
                verified=True,
                source=store.platform,
            )
        )
    if customer.email:
        identities.append(
            IdentityIn(
                channel=store.channel,
                kind=IdentityKind.EMAIL,
                value=customer.email,
                source=store.platform,
            )
        )
    if customer.phone:
        identities.append(
            IdentityIn(
                channel=store.channel,
                kind=IdentityKind.PHONE,
                value=customer.phone,
                source=store.platform,
            )
        )
    return identities


def _customer_request(
    store: Store, customer: CustomerIn, seen_at: dt.datetime | None
) -> ResolveItem | None:
    """What people.member_resolve needs for this customer; None when the record names nobody.
    PayloadError when an identity is malformed and nothing usable is left."""
    if customer.is_empty:
        return None
    country = customer.country.upper() if len(customer.country) == 2 else ""
    usable: list[IdentityIn] = []
    for ident in _customer_identities(store, customer):
        try:
            value = normalise_identity(ident.kind, ident.value, country or None)
        except InputError:
            # A bad phone or email on a record with a good id is dropped, not fatal.
            continue
        usable.append(replace(ident, value=value))
    if not usable:
        raise PayloadError("customer", _("The customer has no valid id, email or phone."))
    return ResolveItem(
        identities=usable,
        attrs=MemberAttrs(
            display_name=customer.display_name[:200],
            city=customer.city[:120],
            country=country,
            languages=customer.languages,
        ),
        seen_at=seen_at or customer.created_at,
    )


def customer_resolve(
    *, store: Store, customer: CustomerIn, seen_at: dt.datetime | None = None
) -> Customer | None:
    """The member behind a store customer (joined or created), or None when the record names
    nobody (no id, email or phone). A guest's email and a later account with that email meet
    on one member; uncertain matches become merge suggestions (people.member_resolve).

    PayloadError when an identity is malformed and nothing usable is left.
    """
    return customers_resolve(store=store, wanted=[(customer, seen_at)])[customer]


def customers_resolve(
    *, store: Store, wanted: Sequence[tuple[CustomerIn, dt.datetime | None]]
) -> dict[CustomerIn, Customer | None]:
    """customer_resolve for many records, in order (people.member_resolve_many: people new to
    the workspace are created in bulk). PayloadError for the first unusable record."""
    requests: dict[CustomerIn, ResolveItem | None] = {}
    for customer, seen_at in wanted:
        if customer not in requests:
            requests[customer] = _customer_request(store, customer, seen_at)
    asked = [(customer, item) for customer, item in requests.items() if item is not None]
    try:
        resolutions = member_resolve_many(
            workspace=store.workspace, items=[item for _customer, item in asked]
        )
    except InputError as error:
        raise PayloadError("customer", str(error)) from error
    # The identity an order hangs on: the record's first usable one (its id when it has one).
    primaries = {
        (ident.channel.strip().lower(), ident.kind, ident.value)
        for _customer, item in asked
        for ident in item.identities[:1]
    }
    identities: dict[tuple[str, str, str], Identity] = {}
    by_kind: dict[tuple[str, str], list[str]] = {}
    for channel, kind, value in primaries:
        by_kind.setdefault((channel, kind), []).append(value)
    for (channel, kind), values in by_kind.items():
        ordered = sorted(values)
        for at in range(0, len(ordered), IN_BATCH):
            for row in Identity.objects.filter(
                workspace=store.workspace,
                channel=channel,
                kind=kind,
                value__in=ordered[at : at + IN_BATCH],
            ):
                identities[(row.channel, row.kind, row.value)] = row
    found: dict[CustomerIn, Customer | None] = dict.fromkeys(requests)
    for (customer, item), resolution in zip(asked, resolutions, strict=True):
        primary = item.identities[0]
        found[customer] = Customer(
            member=resolution.member,
            identity=identities[(primary.channel.strip().lower(), primary.kind, primary.value)],
        )
    return found


def customer_upsert(*, store: Store, customer: CustomerIn) -> Customer | None:
    """A customer record from the store (created or updated): resolves it to a member."""
    with transaction.atomic():
        return customer_resolve(store=store, customer=customer)


# --------------------------------------------------------------------------- products


def _outcome(existing: dt.datetime | None, incoming: dt.datetime | None) -> str:
    if existing is None or incoming is None:
        return UPDATED
    if incoming < existing:
        return STALE
    return UPDATED if incoming > existing else UNCHANGED


def product_upsert(*, store: Store, product: ProductIn) -> str:
    """Create or update a product and its variants; an older version never overwrites a newer
    one. Order lines waiting for this product (by id or SKU) are linked to it."""
    if not product.external_id:
        raise PayloadError("id", _("The product has no id."))
    with transaction.atomic():
        row = (
            Product.objects.select_for_update(no_key=True)
            .filter(store=store, external_id=product.external_id)
            .first()
        )
        if row is None:
            outcome = CREATED
            row = Product(
                workspace_id=store.workspace_id, store=store, external_id=product.external_id
            )
        else:
            outcome = _outcome(row.source_updated_at, product.updated_at)
            if outcome == STALE:
                return STALE
        row.title = product.title[:300] or product.external_id
        row.titles = dict(product.titles)
        row.url = product.url[:500]
        row.image_url = product.image_url[:500]
        row.status = product.status if product.status in Product.Status.values else "active"
        row.source_updated_at = product.updated_at
        try:
            with transaction.atomic():
                row.save()
        except IntegrityError:
            # Another writer created it between our read and our insert: theirs is as good.
            return UNCHANGED
        for variant in product.variants:
            ProductVariant.objects.update_or_create(
                store=store,
                external_id=variant.external_id,
                defaults={
                    "workspace_id": store.workspace_id,
                    "product": row,
                    "sku": variant.sku[:100],
                    "title": variant.title[:300],
                    "price_minor": variant.price_minor,
                    "currency": store.currency,
                },
            )
        _link_lines_to_product(store, row)
    return outcome


def _link_lines_to_product(store: Store, product: Product) -> None:
    lines = OrderLine.objects.filter(order__store=store, product__isnull=True)
    lines.filter(product_external_id=product.external_id).update(product=product)
    for variant in ProductVariant.objects.filter(product=product):
        OrderLine.objects.filter(
            order__store=store, variant__isnull=True, variant_external_id=variant.external_id
        ).exclude(variant_external_id="").update(variant=variant, product=product)
        if variant.sku:
            lines.filter(product_external_id="", sku=variant.sku).update(
                product=product, variant=variant
            )


# --------------------------------------------------------------------------- orders


def _check_order(order: OrderIn) -> None:
    if not order.external_id:
        raise PayloadError("id", _("The order has no id."))
    if order.currency not in ISO_4217_CODES:
        raise PayloadError(
            "currency", _("“%(code)s” is not an ISO 4217 currency code.") % {"code": order.currency}
        )
    for name in ("placed_at", "updated_at"):
        value = getattr(order, name)
        if not isinstance(value, dt.datetime) or timezone.is_naive(value):
            raise PayloadError(name, _("Give the time with a time zone."))
    if order.status not in BASE_STATUSES:
        raise PayloadError(
            "status", _("Unknown order status “%(status)s”.") % {"status": order.status}
        )
    seen: set[str] = set()
    for index, line in enumerate(order.lines):
        if not line.external_id or line.external_id in seen:
            raise PayloadError(f"lines[{index}].id", _("Each line needs its own id."))
        seen.add(line.external_id)
        if line.quantity < 0:
            raise PayloadError(f"lines[{index}].quantity", _("A quantity cannot be negative."))


def order_upsert(*, store: Store, order: OrderIn) -> str:
    """Create or update an order with its lines and the refunds it carries.

    Returns created / updated / unchanged / stale. A stale order (older than the stored
    one) changes nothing but its refunds, which are facts of their own. Records the order's
    activities (placed, paid, fulfilled, cancelled) once each.
    """
    _check_order(order)
    for _attempt in range(UPSERT_ATTEMPTS):
        try:
            with transaction.atomic():
                return _order_upsert_once(store, order)
        except IntegrityError:
            # A concurrent writer inserted the same order or a line: read it and go again.
            continue
    raise IntegrityError("order kept changing while it was written")


def _order_upsert_once(store: Store, order: OrderIn) -> str:
    row = (
        Order.objects.select_for_update(no_key=True)
        .filter(store=store, external_id=order.external_id)
        .first()
    )
    touched: set[int] = set()
    if row is not None:
        outcome = _outcome(row.source_updated_at, order.updated_at)
        if row.member_id is not None:
            touched.add(row.member_id)
        if outcome == STALE:
            # Only the refunds it carries are news: they are facts of their own.
            for refund in order.refunds:
                _refund_write(store, refund, touched)
            _refunds_link(store, row)
            _order_settle(row)
            row.save(update_fields=["refunded_minor", "status", "updated_at"])
            _order_activities(store, row)
            _members_refresh(store.workspace_id, touched)
            return STALE
    else:
        outcome = CREATED
        row = Order(workspace_id=store.workspace_id, store=store, external_id=order.external_id)

    customer = None
    # An erased order stays anonymous: a late update must not link it to a person again.
    if row.erased_at is None and order.customer is not None and not order.customer.is_empty:
        customer = customer_resolve(store=store, customer=order.customer, seen_at=order.placed_at)
    if (member_id := order_fill(row, order, customer)) is not None:
        touched.add(member_id)
    if row.pk is None:
        row.save()
    _lines_write(store, row, order.lines)
    for refund in order.refunds:
        _refund_write(store, refund, touched)
    _refunds_link(store, row)
    _order_settle(row)
    row.save()
    _order_activities(store, row)
    _members_refresh(store.workspace_id, touched)
    return outcome


def _lines_write(store: Store, order: Order, lines: Sequence[LineIn]) -> None:
    if not lines:
        return
    existing = {line.external_id: line for line in OrderLine.objects.filter(order=order)}
    products = dict(
        Product.objects.filter(
            store=store, external_id__in={ln.product_external_id for ln in lines} - {""}
        ).values_list("external_id", "pk")
    )
    variants = {
        v.external_id: v
        for v in ProductVariant.objects.filter(
            store=store, external_id__in={ln.variant_external_id for ln in lines} - {""}
        )
    }
    by_sku = {
        v.sku: v
        for v in ProductVariant.objects.filter(
            store=store,
            sku__in={ln.sku for ln in lines if ln.sku and not ln.variant_external_id} - {""},
        )
    }
    new, changed = [], []
    for line in lines:
        variant = variants.get(line.variant_external_id) or (
            by_sku.get(line.sku) if not line.variant_external_id else None
        )
        product_id = products.get(line.product_external_id) or (
            variant.product_id if variant is not None else None
        )
        row = existing.pop(line.external_id, None)
        if row is None:
            row = OrderLine(
                workspace_id=store.workspace_id, order=order, external_id=line.external_id
            )
            new.append(row)
        else:
            changed.append(row)
        row.product_id = product_id
        row.variant = variant
        row.product_external_id = line.product_external_id[:100]
        row.variant_external_id = line.variant_external_id[:100]
        row.sku = line.sku[:100]
        row.title = line.title[:300]
        row.quantity = line.quantity
        row.unit_price_minor = line.unit_price_minor
        row.discount_minor = line.discount_minor
    OrderLine.objects.bulk_create(new)
    if changed:
        OrderLine.objects.bulk_update(
            changed,
            [
                "product",
                "variant",
                "product_external_id",
                "variant_external_id",
                "sku",
                "title",
                "quantity",
                "unit_price_minor",
                "discount_minor",
            ],
        )
    # Lines the platform no longer lists (an order edit) go, unless a refund points at them.
    gone = [row.pk for row in existing.values()]
    if gone:
        OrderLine.objects.filter(pk__in=gone, refund_lines__isnull=True).delete()


def _order_settle(order: Order) -> None:
    """Refunded total and status from the base status, refunds and cancellation."""
    refunded = Refund.objects.filter(order=order).aggregate(total=Sum("amount_minor"))["total"]
    order_settle_with(order, refunded or 0)


def order_settle_with(order: Order, refunded: int) -> None:
    """Set the order's refunded total and its status (from the base status, the refunds
    and a cancellation); the single and bulk paths both settle orders here."""
    order.refunded_minor = refunded
    if order.cancelled_at is not None:
        order.status = OrderStatus.CANCELLED
    elif refunded > 0 and refunded >= order.total_minor:
        order.status = OrderStatus.REFUNDED
    elif refunded > 0:
        order.status = OrderStatus.PARTIALLY_REFUNDED
    else:
        order.status = order.base_status


def _order_activities(store: Store, order: Order) -> None:
    if order.member_id is None:
        return
    items = order_event_activities(store, order)
    items.extend(
        refund_activity(store, order, refund) for refund in Refund.objects.filter(order=order)
    )
    activity_record_bulk(workspace=store.workspace, items=items)


def order_event_activities(store: Store, order: Order) -> list[ActivityIn]:
    """One activity per event the order has had (placed, paid, fulfilled, cancelled), keyed
    so that recording them again adds nothing. The order must have a member."""
    assert order.member_id is not None
    props = {
        "store": store.pk,
        "order": order.external_id,
        "number": order.number,
        "currency": order.currency,
    }
    times = {
        "placed": order.placed_at,
        "paid": order.paid_at,
        "fulfilled": order.fulfilled_at,
        "cancelled": order.cancelled_at,
    }
    return [
        ActivityIn(
            member_id=order.member_id,
            kind=kind,
            channel=store.platform,
            occurred_at=when,
            source=ACTIVITY_SOURCE,
            source_id=f"{store.pk}:order:{order.external_id}:{event}",
            properties=props,
        )
        for event, kind in ORDER_EVENT_KINDS.items()
        if (when := times[event]) is not None
    ]


def refund_activity(store: Store, order: Order, refund: Refund) -> ActivityIn:
    assert order.member_id is not None
    return ActivityIn(
        member_id=order.member_id,
        kind="refund",
        channel=store.platform,
        occurred_at=refund.refunded_at,
        source=ACTIVITY_SOURCE,
        source_id=f"{store.pk}:refund:{refund.external_id}",
        properties={
            "store": store.pk,
            "order": order.external_id,
            "refund": refund.external_id,
            "currency": refund.currency,
        },
    )


# --------------------------------------------------------------------------- refunds


def refund_upsert(*, store: Store, refund: RefundIn) -> str:
    """Store a refund (created, or unchanged when known); links it to its order when the
    order is here, else it waits for the order. Records the refund activity once."""
    touched: set[int] = set()
    with transaction.atomic():
        outcome = _refund_write(store, refund, touched)
        order = (
            Order.objects.select_for_update(no_key=True)
            .filter(store=store, external_id=refund.order_external_id)
            .first()
        )
        if order is not None:
            _refunds_link(store, order)
            _order_settle(order)
            order.save(update_fields=["refunded_minor", "status", "updated_at"])
            _order_activities(store, order)
            if order.member_id is not None:
                touched.add(order.member_id)
        _members_refresh(store.workspace_id, touched)
    return outcome


def _refund_write(store: Store, refund: RefundIn, touched: set[int]) -> str:
    if not refund.external_id:
        raise PayloadError("refund.id", _("The refund has no id."))
    if not refund.order_external_id:
        raise PayloadError("refund.order_id", _("The refund does not name its order."))
    if timezone.is_naive(refund.refunded_at):
        raise PayloadError("refund.created_at", _("Give the time with a time zone."))
    if Refund.objects.filter(store=store, external_id=refund.external_id).exists():
        return UNCHANGED
    try:
        with transaction.atomic():
            row = Refund.objects.create(
                workspace_id=store.workspace_id,
                store=store,
                external_id=refund.external_id,
                order_external_id=refund.order_external_id,
                amount_minor=refund.amount_minor,
                currency=refund.currency or store.currency,
                reason=refund.reason[:300],
                refunded_at=refund.refunded_at,
            )
            RefundLine.objects.bulk_create(
                [
                    RefundLine(
                        workspace_id=store.workspace_id,
                        refund=row,
                        line_external_id=line.line_external_id,
                        quantity=line.quantity,
                        amount_minor=line.amount_minor,
                    )
                    for line in {ln.line_external_id: ln for ln in refund.lines}.values()
                ]
            )
    except IntegrityError:
        return UNCHANGED
    return CREATED


def order_fill(row: Order, order: OrderIn, customer: Customer | None) -> int | None:
    """Copy an incoming order onto its row, new or stored (not saved); returns the member it
    is now linked to, if any. An erased order stays anonymous: a late update links no person
    to it and copies no personal field onto it again."""
    if row.erased_at is not None:
        customer = None
    if customer is not None:
        row.member = customer.member
        row.customer_identity = customer.identity
    elif row.pk is None:
        row.member = None
        row.customer_identity = None
    cust = order.customer or CustomerIn()
    if row.erased_at is None:
        if cust.external_id:
            row.customer_external_id = cust.external_id[:100]
        row.email = cust.email[:320]
        row.shipping_address = dict(order.shipping_address)
    row.number = order.number[:64]
    row.currency = order.currency
    row.subtotal_minor = order.subtotal_minor
    row.discount_minor = order.discount_minor
    row.shipping_minor = order.shipping_minor
    row.tax_minor = order.tax_minor
    row.total_minor = order.total_minor
    row.discount_codes = list(order.discount_codes)
    row.base_status = order.status
    row.placed_at = order.placed_at
    row.paid_at = order.paid_at
    row.fulfilled_at = order.fulfilled_at
    row.cancelled_at = order.cancelled_at
    row.landing_site = order.landing_site[:500]
    row.referring_code = order.referring_code[:100]
    row.source_updated_at = order.updated_at
    if row.pk is None:
        row.status = order.status
    return customer.member.pk if customer is not None else None


def _refunds_link(store: Store, order: Order) -> None:
    Refund.objects.filter(
        store=store, order_external_id=order.external_id, order__isnull=True
    ).update(order=order)
    lines = dict(OrderLine.objects.filter(order=order).values_list("external_id", "pk"))
    waiting = RefundLine.objects.filter(refund__order=order, order_line__isnull=True)
    for line in waiting:
        if line.line_external_id in lines:
            line.order_line_id = lines[line.line_external_id]
            line.save(update_fields=["order_line"])


# --------------------------------------------------------------------------- summaries


def _members_refresh(workspace_id: int, member_ids: Iterable[int]) -> None:
    ids = sorted(set(member_ids))
    if ids:
        members_commerce_refresh(workspace_id=workspace_id, member_ids=ids)


def members_commerce_refresh(*, workspace_id: int, member_ids: Sequence[int]) -> None:
    """Recompute the buying summary (orders, net spend, first/last order) of these members
    from their orders. Cancelled orders do not count."""
    rows = (
        Order.objects.filter(workspace_id=workspace_id, member_id__in=member_ids)
        .filter(~Q(status=OrderStatus.CANCELLED))
        .values("member_id", "currency")
        .annotate(
            n=Count("id"),
            total=Sum("total_minor"),
            refunded=Sum("refunded_minor"),
            first=Min("placed_at"),
            last=Max("placed_at"),
        )
    )
    with transaction.atomic():
        MemberCommerce.objects.filter(workspace_id=workspace_id, member_id__in=member_ids).delete()
        MemberCommerce.objects.bulk_create(
            [
                MemberCommerce(
                    workspace_id=workspace_id,
                    member_id=row["member_id"],
                    currency=row["currency"],
                    order_count=row["n"],
                    net_spend_minor=(row["total"] or 0) - (row["refunded"] or 0),
                    refunded_minor=row["refunded"] or 0,
                    first_order_at=row["first"],
                    last_order_at=row["last"],
                )
                for row in rows
            ]
        )


def orders_follow_identities(*, workspace_id: int, member_ids: Sequence[int]) -> None:
    """After a merge or its undo: each order of these members belongs to whoever now holds
    the identity it was matched by; the members' summaries are recomputed."""
    orders = Order.objects.filter(workspace_id=workspace_id, member_id__in=member_ids).exclude(
        customer_identity__isnull=True
    )
    touched = set(member_ids)
    for order_id, identity_member in orders.values_list("pk", "customer_identity__member_id"):
        Order.objects.filter(pk=order_id).exclude(member_id=identity_member).update(
            member_id=identity_member
        )
        touched.add(identity_member)
    # Orders matched by an identity that moved onto one of these members.
    moved = Order.objects.filter(
        workspace_id=workspace_id, customer_identity__member_id__in=member_ids
    ).exclude(member_id=F("customer_identity__member_id"))
    for order_id, identity_member in moved.values_list("pk", "customer_identity__member_id"):
        Order.objects.filter(pk=order_id).update(member_id=identity_member)
        touched.add(identity_member)
    _members_refresh(workspace_id, touched)
