"""Reads of commerce data: what a member bought and spent, their orders, a store's health.

Every read is scoped by the workspace of the member or store it is given; nothing here
writes. Money is integer minor units with its currency; format it where it is shown.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import (
    BigIntegerField,
    Count,
    ExpressionWrapper,
    F,
    IntegerField,
    Max,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Greatest

from circolo.commerce.models import (
    Delivery,
    MemberCommerce,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    ProductVariant,
    Refund,
    RefundLine,
    Store,
    SyncRun,
)
from circolo.core.models import Workspace
from circolo.people.models import Member

# Orders that no longer count as a purchase: called off, or all of it given back.
VOID_ORDER_STATUSES = (OrderStatus.CANCELLED, OrderStatus.REFUNDED)
ORDERS_PAGE_SIZE = 10
# The health page measures processing latency over this many of the latest deliveries.
LATENCY_SAMPLE = 1000
RECENT_FAILED = 20
RECENT_SYNCS = 10


# --------------------------------------------------------------------------- line amounts


def _refunded_per_line(field_name: str) -> Coalesce:
    """Sum of a field of the refund lines pointing at the outer order line (0 when none)."""
    sums = (
        RefundLine.objects.filter(order_line=OuterRef("pk"))
        .values("order_line")
        .annotate(total=Sum(field_name))
        .values("total")
    )
    return Coalesce(Subquery(sums, output_field=BigIntegerField()), Value(0))


def order_line_net_merchandise(line: OrderLine) -> int:
    """What the customer still pays for a line's goods: quantity times price, less its discounts
    and its refunded merchandise; never below zero. Uses prefetched refund lines if any."""
    refunded = sum(refund_line.amount_minor for refund_line in line.refund_lines.all())
    return max(line.gross_minor - refunded, 0)


def order_lines_net(order: Order) -> dict[int, int]:
    """Net merchandise of each line of an order (by line id), in one query."""
    rows = (
        OrderLine.objects.filter(workspace_id=order.workspace_id, order=order)
        .annotate(refunded=_refunded_per_line("amount_minor"))
        .values_list("pk", "quantity", "unit_price_minor", "discount_minor", "refunded")
    )
    return {
        pk: max(quantity * price - discount - refunded, 0)
        for pk, quantity, price, discount, refunded in rows
    }


# --------------------------------------------------------------------------- purchases


def _bought_lines(member: Member) -> QuerySet[OrderLine]:
    """The member's order lines that are still a purchase: a linked product, a positive
    quantity, an order neither cancelled nor fully refunded, and not all of it refunded."""
    return _kept_lines(member.workspace_id).filter(order__member=member)


def _kept_lines(workspace_id: int) -> QuerySet[OrderLine]:
    """The workspace's order lines that are still a purchase (see _bought_lines)."""
    gross = ExpressionWrapper(
        F("quantity") * F("unit_price_minor") - F("discount_minor"),
        output_field=BigIntegerField(),
    )
    return (
        OrderLine.objects.filter(
            workspace_id=workspace_id,
            order__cancelled_at__isnull=True,
            product__isnull=False,
            quantity__gt=0,
        )
        .exclude(order__status__in=VOID_ORDER_STATUSES)
        .annotate(
            line_gross=gross,
            refunded_quantity=_refunded_per_line("quantity"),
            refunded_amount=_refunded_per_line("amount_minor"),
        )
        .exclude(refunded_quantity__gte=F("quantity"))
        .exclude(Q(line_gross__gt=0) & Q(refunded_amount__gte=F("line_gross")))
    )


_FULFILLED = Q(order__fulfilled_at__isnull=False) | Q(order__base_status=OrderStatus.FULFILLED)


def member_purchase(*, member: Member, product: Product) -> tuple[dt.datetime, bool] | None:
    """When the member first bought the product and whether any such order was fulfilled;
    None when they never bought it (or it was cancelled or refunded in full)."""
    if product.workspace_id != member.workspace_id:
        return None
    rows = list(
        _bought_lines(member)
        .filter(product=product)
        .values_list("order__placed_at", "order__fulfilled_at", "order__base_status")
    )
    if not rows:
        return None
    first = min(placed for placed, _fulfilled_at, _status in rows)
    fulfilled = any(
        fulfilled_at is not None or status == OrderStatus.FULFILLED
        for _placed, fulfilled_at, status in rows
    )
    return first, fulfilled


def members_owning_skus(
    *, workspace_id: int, member_ids: Iterable[int], skus: Iterable[str]
) -> set[int]:
    """Which of these members bought and kept any of these SKUs. One query for all."""
    wanted, ids = sorted({sku for sku in skus if sku}), sorted(set(member_ids))
    if not wanted or not ids:
        return set()
    return set(
        _kept_lines(workspace_id)
        .filter(order__member_id__in=ids, sku__in=wanted)
        .values_list("order__member_id", flat=True)
        .distinct()
    )


def sku_owners_recent(
    *,
    workspace_id: int,
    skus: Iterable[str],
    exclude_member_ids: Iterable[int] = (),
    limit: int = 50,
) -> list[int]:
    """Members who bought and kept any of these SKUs, the most recent buyer first (ids, at
    most `limit`). One query."""
    wanted = sorted({sku for sku in skus if sku})
    if not wanted or limit <= 0:
        return []
    kept = _kept_lines(workspace_id).filter(sku__in=wanted, order__member__isnull=False)
    rows = (
        OrderLine.objects.filter(pk__in=kept.values("pk"))
        .exclude(order__member_id__in=sorted(set(exclude_member_ids)))
        .values("order__member_id")
        .annotate(last=Max("order__placed_at"))
        .order_by("-last", "order__member_id")[:limit]
    )
    return [row["order__member_id"] for row in rows]


def member_bought_skus(*, member: Member, skus: Iterable[str]) -> set[str]:
    """Which of these SKUs the member bought and kept (verified owner of). One query."""
    wanted = sorted({sku for sku in skus if sku})
    if not wanted:
        return set()
    return set(_bought_lines(member).filter(sku__in=wanted).values_list("sku", flat=True))


@dataclass(frozen=True)
class BoughtProduct:
    """A product the member bought (a verified buyer of it)."""

    product: Product
    first_bought_at: dt.datetime
    fulfilled: bool


def member_bought_products(*, member: Member) -> list[BoughtProduct]:
    """Every product the member bought and kept, most recently first bought first. Two queries."""
    firsts: dict[int, dt.datetime] = {}
    fulfilled: dict[int, bool] = {}
    rows = _bought_lines(member).values_list(
        "product_id", "order__placed_at", "order__fulfilled_at", "order__base_status"
    )
    for product_id, placed_at, fulfilled_at, status in rows:
        if product_id not in firsts or placed_at < firsts[product_id]:
            firsts[product_id] = placed_at
        done = fulfilled_at is not None or status == OrderStatus.FULFILLED
        fulfilled[product_id] = fulfilled.get(product_id, False) or done
    if not firsts:
        return []
    products = Product.objects.filter(workspace_id=member.workspace_id, pk__in=firsts)
    bought = [
        BoughtProduct(
            product=product, first_bought_at=firsts[product.pk], fulfilled=fulfilled[product.pk]
        )
        for product in products
    ]
    bought.sort(key=lambda item: (item.first_bought_at, item.product.pk), reverse=True)
    return bought


# --------------------------------------------------------------------------- member summary


@dataclass(frozen=True)
class MemberSummary:
    """A member's buying figures in one currency; other currencies they bought in are named."""

    currency: str
    order_count: int
    net_spend_minor: int
    refunded_minor: int
    average_order_minor: int
    first_order_at: dt.datetime | None
    last_order_at: dt.datetime | None
    other_currencies: tuple[str, ...] = ()


def member_summary(*, member: Member) -> MemberSummary | None:
    """Net spend, orders, average order value and first/last order of a member, in the
    workspace's currency, else in the currency they ordered most in; None without orders."""
    rows = list(
        MemberCommerce.objects.filter(workspace_id=member.workspace_id, member=member).order_by(
            "-order_count", "-net_spend_minor", "currency"
        )
    )
    rows = [row for row in rows if row.order_count > 0]
    if not rows:
        return None
    main = next((row for row in rows if row.currency == member.workspace.currency), rows[0])
    return MemberSummary(
        currency=main.currency,
        order_count=main.order_count,
        net_spend_minor=main.net_spend_minor,
        refunded_minor=main.refunded_minor,
        # Rounded half up: an average is shown, never summed again.
        average_order_minor=(2 * main.net_spend_minor + main.order_count) // (2 * main.order_count),
        first_order_at=main.first_order_at,
        last_order_at=main.last_order_at,
        other_currencies=tuple(sorted(row.currency for row in rows if row is not main)),
    )


# --------------------------------------------------------------------------- member orders


def member_orders(
    *, member: Member, page: int | str | None = 1, per_page: int = ORDERS_PAGE_SIZE
) -> Page[Order]:
    """One page of the member's orders, newest first, with their store, lines and the lines'
    refund lines loaded (four queries for any page). A bad page number gives the nearest page."""
    lines = (
        OrderLine.objects.filter(workspace_id=member.workspace_id)
        .select_related("product")
        .prefetch_related(
            Prefetch(
                "refund_lines",
                queryset=RefundLine.objects.filter(workspace_id=member.workspace_id),
            )
        )
        .order_by("pk")
    )
    orders = (
        Order.objects.filter(workspace_id=member.workspace_id, member=member)
        .select_related("store")
        .prefetch_related(Prefetch("lines", queryset=lines))
        .order_by("-placed_at", "-pk")
    )
    return Paginator(orders, per_page).get_page(page)


# --------------------------------------------------------------------------- store health


@dataclass(frozen=True)
class DeliveryCounts:
    received: int = 0
    processed: int = 0
    failed: int = 0
    ignored: int = 0
    pending: int = 0
    duplicates: int = 0
    last_received_at: dt.datetime | None = None


_DELIVERY_COUNTS: dict[str, Any] = {
    "received": Count("id"),
    "processed": Count("id", filter=Q(status=Delivery.Status.PROCESSED)),
    "failed": Count("id", filter=Q(status=Delivery.Status.FAILED)),
    "ignored": Count("id", filter=Q(status=Delivery.Status.IGNORED)),
    "pending": Count("id", filter=Q(status=Delivery.Status.PENDING)),
    "duplicates": Coalesce(Sum("duplicates"), Value(0), output_field=IntegerField()),
    "last_received_at": Max("received_at"),
}


@dataclass(frozen=True)
class StoreHealth:
    """What the store health page shows: the webhook inbox, signatures, latency, syncs."""

    store: Store
    deliveries: DeliveryCounts
    rejected_signatures: int
    rejected_last_at: dt.datetime | None
    # Seconds from receipt to processed, over the latest processed deliveries.
    latency_p50: float | None
    latency_p99: float | None
    latency_sample: int
    last_reconciliation: SyncRun | None
    recent_syncs: list[SyncRun] = field(default_factory=list)
    recent_failed: list[Delivery] = field(default_factory=list)


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile of sorted `values` (None for no values)."""
    if not values:
        return None
    rank = max(math.ceil(fraction * len(values)), 1)
    return values[min(rank, len(values)) - 1]


def store_health(*, store: Store) -> StoreHealth:
    """The store's health figures in a fixed number of queries (five)."""
    counts = Delivery.objects.filter(workspace_id=store.workspace_id, store=store).aggregate(
        **_DELIVERY_COUNTS
    )
    timings = (
        Delivery.objects.filter(
            workspace_id=store.workspace_id,
            store=store,
            status=Delivery.Status.PROCESSED,
            processed_at__isnull=False,
        )
        .order_by("-processed_at")
        .values_list("received_at", "processed_at")[:LATENCY_SAMPLE]
    )
    latencies = sorted(
        max((processed - received).total_seconds(), 0.0)
        for received, processed in timings
        if processed is not None
    )
    syncs = list(
        SyncRun.objects.filter(workspace_id=store.workspace_id, store=store).order_by(
            "-started_at", "-pk"
        )[:RECENT_SYNCS]
    )
    last_reconciliation = next((run for run in syncs if run.mode == SyncRun.Mode.RECONCILE), None)
    if last_reconciliation is None and len(syncs) == RECENT_SYNCS:
        # Older than the runs listed here: look it up on its own.
        last_reconciliation = (
            SyncRun.objects.filter(
                workspace_id=store.workspace_id, store=store, mode=SyncRun.Mode.RECONCILE
            )
            .order_by("-started_at", "-pk")
            .first()
        )
    failed = list(
        Delivery.objects.filter(
            workspace_id=store.workspace_id, store=store, status=Delivery.Status.FAILED
        )
        .defer("body", "headers")
        .order_by("-received_at", "-pk")[:RECENT_FAILED]
    )
    return StoreHealth(
        store=store,
        deliveries=DeliveryCounts(**counts),
        rejected_signatures=store.rejected_deliveries,
        rejected_last_at=store.rejected_last_at,
        latency_p50=percentile(latencies, 0.5),
        latency_p99=percentile(latencies, 0.99),
        latency_sample=len(latencies),
        last_reconciliation=last_reconciliation,
        recent_syncs=syncs,
        recent_failed=failed,
    )


@dataclass(frozen=True)
class StoreOverview:
    """A store on the stores list, with a one-line health summary."""

    store: Store
    deliveries: DeliveryCounts
    last_sync: SyncRun | None


def workspace_stores(*, workspace: Workspace) -> list[StoreOverview]:
    """The workspace's stores with their delivery counts and latest sync (three queries)."""
    stores = list(
        Store.objects.filter(workspace=workspace).annotate(
            **{f"delivery_{name}": agg for name, agg in _delivery_annotations().items()}
        )
    )
    if not stores:
        return []
    latest: dict[int, SyncRun] = {}
    runs = SyncRun.objects.filter(workspace=workspace, store__in=stores).order_by(
        "store_id", "-started_at", "-pk"
    )
    # One run per store: the first of each store in this order (portable DISTINCT ON).
    newest_ids = (
        SyncRun.objects.filter(workspace=workspace, store=OuterRef("store"))
        .order_by("-started_at", "-pk")
        .values("pk")[:1]
    )
    for run in runs.filter(pk=Subquery(newest_ids)):
        latest[run.store_id] = run
    return [
        StoreOverview(
            store=store,
            deliveries=DeliveryCounts(
                **{name: getattr(store, f"delivery_{name}") for name in _DELIVERY_COUNTS}
            ),
            last_sync=latest.get(store.pk),
        )
        for store in stores
    ]


def _delivery_annotations() -> dict[str, Any]:
    """The inbox counts as annotations of stores (through the deliveries relation)."""
    statuses = {
        "processed": Delivery.Status.PROCESSED,
        "failed": Delivery.Status.FAILED,
        "ignored": Delivery.Status.IGNORED,
        "pending": Delivery.Status.PENDING,
    }
    annotations: dict[str, Any] = {"received": Count("deliveries")}
    for name, status in statuses.items():
        annotations[name] = Count("deliveries", filter=Q(deliveries__status=status))
    annotations["duplicates"] = Coalesce(
        Sum("deliveries__duplicates"), Value(0), output_field=IntegerField()
    )
    annotations["last_received_at"] = Max("deliveries__received_at")
    return annotations


# --------------------------------------------------------------------------- products by SKU


@dataclass(frozen=True)
class SkuProduct:
    """The product a SKU names, with every SKU of its variants."""

    product: Product
    skus: tuple[str, ...]


def product_for_sku(*, workspace_id: int, sku: str) -> SkuProduct | None:
    """The workspace's product that has a variant with this SKU (the most recently updated
    one if two stores share it), or None. Two queries."""
    variant = (
        ProductVariant.objects.filter(workspace_id=workspace_id, sku=sku)
        .select_related("product")
        .order_by("-product__updated_at", "-pk")
        .first()
    )
    if variant is None:
        return None
    skus = ProductVariant.objects.filter(product=variant.product).exclude(sku="")
    return SkuProduct(
        product=variant.product,
        skus=tuple(sorted(set(skus.values_list("sku", flat=True)))),
    )


# --------------------------------------------------------------------------- loyalty


@dataclass(frozen=True)
class OrderForPoints:
    """What the points of one order are computed from.

    `lines` is each line's merchandise (quantity times price, less its discounts; shipping
    and tax are never in it), `refunded_lines` the merchandise refunded per line, and
    `refunded_unlined` refunds that name no line (an amount for the whole order).
    """

    order_id: int
    member_id: int | None
    number: str
    currency: str
    total_minor: int
    paid: bool
    cancelled: bool
    # When the order was paid (or placed, when the platform gave no payment time).
    paid_at: dt.datetime
    lines: dict[int, int]
    refunded_lines: dict[int, int] = field(default_factory=dict)
    refunded_unlined: int = 0
    discount_codes: tuple[str, ...] = ()
    cancelled_at: dt.datetime | None = None
    # When the latest refund was made (None: no refund).
    refunded_at: dt.datetime | None = None


_PAID_STATUSES = (OrderStatus.PAID, OrderStatus.FULFILLED)


def orders_for_points(
    *,
    workspace_id: int,
    order_ids: Iterable[int] = (),
    refs: Iterable[tuple[int, str]] = (),
) -> list[OrderForPoints]:
    """The orders named by id or by (store id, the platform's order id), with their lines and
    refunds, in three queries per 5,000 orders. Unknown orders are left out."""
    ids = set(order_ids)
    pairs = set(refs)
    if pairs:
        stores = {store for store, _external in pairs}
        externals = sorted({external for _store, external in pairs})
        for start in range(0, len(externals), 5000):
            ids.update(
                pk
                for pk, store_id, external_id in Order.objects.filter(
                    workspace_id=workspace_id,
                    store_id__in=stores,
                    external_id__in=externals[start : start + 5000],
                ).values_list("pk", "store_id", "external_id")
                if (store_id, external_id) in pairs
            )
    found: list[OrderForPoints] = []
    ordered = sorted(ids)
    for start in range(0, len(ordered), 5000):
        found.extend(_orders_for_points(workspace_id, ordered[start : start + 5000]))
    return found


def _orders_for_points(workspace_id: int, ids: Sequence[int]) -> list[OrderForPoints]:
    lines: dict[int, dict[int, int]] = {pk: {} for pk in ids}
    for pk, order_id, quantity, price, discount in OrderLine.objects.filter(
        workspace_id=workspace_id, order_id__in=ids
    ).values_list("pk", "order_id", "quantity", "unit_price_minor", "discount_minor"):
        lines[order_id][pk] = max(quantity * price - discount, 0)
    refunded: dict[int, dict[int, int]] = {pk: {} for pk in ids}
    unlined: dict[int, int] = dict.fromkeys(ids, 0)
    for order_id, line_id, amount in RefundLine.objects.filter(
        workspace_id=workspace_id, refund__order_id__in=ids
    ).values_list("refund__order_id", "order_line_id", "amount_minor"):
        if line_id is None:
            # A line the order does not (or no longer) list: counts for the whole order.
            unlined[order_id] += amount
        else:
            per_line = refunded[order_id]
            per_line[line_id] = per_line.get(line_id, 0) + amount
    # Refunds without any line: their amount counts for the order as a whole.
    for order_id, amount in Refund.objects.filter(
        workspace_id=workspace_id, order_id__in=ids, lines__isnull=True
    ).values_list("order_id", "amount_minor"):
        unlined[order_id] += amount
    refunded_at = dict(
        Refund.objects.filter(workspace_id=workspace_id, order_id__in=ids)
        .values("order_id")
        .annotate(last=Max("refunded_at"))
        .values_list("order_id", "last")
    )
    return [
        OrderForPoints(
            order_id=row["pk"],
            member_id=row["member_id"],
            number=row["number"] or row["external_id"],
            currency=row["currency"],
            total_minor=row["total_minor"],
            paid=row["paid_at"] is not None or row["base_status"] in _PAID_STATUSES,
            cancelled=row["cancelled_at"] is not None,
            paid_at=row["paid_at"] or row["placed_at"],
            lines=lines[row["pk"]],
            refunded_lines=refunded[row["pk"]],
            refunded_unlined=unlined[row["pk"]],
            discount_codes=tuple(str(code) for code in row["discount_codes"] or ()),
            cancelled_at=row["cancelled_at"],
            refunded_at=refunded_at.get(row["pk"]),
        )
        for row in Order.objects.filter(workspace_id=workspace_id, pk__in=ids).values(
            "pk",
            "member_id",
            "number",
            "external_id",
            "currency",
            "total_minor",
            "paid_at",
            "placed_at",
            "base_status",
            "cancelled_at",
            "discount_codes",
        )
    ]


def members_net_spend(
    *,
    workspace_id: int,
    since: dt.datetime,
    currency: str,
    member_ids: Iterable[int] | None = None,
) -> dict[int, int]:
    """Each member's net spend in `currency` (minor units) on orders paid since `since`:
    order totals less their refunds; cancelled orders do not count. Members without such
    orders are left out. One GROUP BY query (all members of the workspace, or these)."""
    paid = Q(paid_at__gte=since) | Q(
        paid_at__isnull=True, base_status__in=_PAID_STATUSES, placed_at__gte=since
    )
    orders = (
        Order.objects.filter(paid, workspace_id=workspace_id, currency=currency)
        .filter(member__isnull=False, cancelled_at__isnull=True)
        .exclude(status=OrderStatus.CANCELLED)
    )
    if member_ids is not None:
        orders = orders.filter(member_id__in=sorted(set(member_ids)))
    rows = (
        orders.values("member_id")
        .annotate(total=Sum("total_minor"), refunded=Sum("refunded_minor"))
        .order_by()
        .values_list("member_id", "total", "refunded")
    )
    return {member_id: (total or 0) - (refunded or 0) for member_id, total, refunded in rows}


def orders_merchandise_since(
    *,
    workspace_id: int,
    since: dt.datetime,
    until: dt.datetime,
    member_ids: Iterable[int] | None = None,
) -> Iterator[tuple[int, int, str, int]]:
    """(order id, member id, currency, net merchandise in minor units) of each order of a
    member (of all members, or these) paid in [since, until) and not cancelled, in no
    particular order, streamed from one GROUP BY query over the lines. Merchandise is what
    loyalty points are computed on: each line's quantity times price less its discounts
    (never below zero); shipping and tax are not in it. Orders without lines are left out."""
    paid = Q(order__paid_at__gte=since, order__paid_at__lt=until) | Q(
        order__paid_at__isnull=True,
        order__base_status__in=_PAID_STATUSES,
        order__placed_at__gte=since,
        order__placed_at__lt=until,
    )
    merchandise = Greatest(
        ExpressionWrapper(
            F("quantity") * F("unit_price_minor") - F("discount_minor"),
            output_field=BigIntegerField(),
        ),
        Value(0),
    )
    rows = OrderLine.objects.filter(
        paid,
        workspace_id=workspace_id,
        order__member__isnull=False,
        order__cancelled_at__isnull=True,
        # Paid by `until`, so placed by then: lets the (workspace, placed_at) index help.
        order__placed_at__lt=until,
    )
    if member_ids is not None:
        rows = rows.filter(order__member_id__in=sorted(set(member_ids)))
    query = (
        rows.values("order_id")
        .annotate(base=Sum(merchandise))
        .values_list("order_id", "order__member_id", "order__currency", "base")
        .order_by()
    )
    # Read through the cursor Django streams with (server-side on PostgreSQL): the columns
    # are plain integers and text, and a million rows skip the ORM's per-row converters.
    sql, params = query.query.sql_with_params()
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while chunk := cursor.fetchmany(5000):
            yield from chunk


# --------------------------------------------------------------------------- referrals


@dataclass(frozen=True)
class OrderContact:
    """Who an order is for: its member, the email and the shipping address it carries."""

    order_id: int
    member_id: int | None
    email: str
    shipping_address: dict[str, Any]


def orders_contacts(*, workspace_id: int, order_ids: Iterable[int]) -> dict[int, OrderContact]:
    """The member, email and shipping address of these orders (by id). One query per 5,000."""
    ids = sorted(set(order_ids))
    found: dict[int, OrderContact] = {}
    for start in range(0, len(ids), 5000):
        for pk, member_id, email, address in Order.objects.filter(
            workspace_id=workspace_id, pk__in=ids[start : start + 5000]
        ).values_list("pk", "member_id", "email", "shipping_address"):
            found[pk] = OrderContact(
                order_id=pk,
                member_id=member_id,
                email=email or "",
                shipping_address=address if isinstance(address, dict) else {},
            )
    return found


def members_shipping_addresses(
    *, workspace_id: int, member_ids: Iterable[int], limit: int = 2000
) -> dict[int, list[dict[str, Any]]]:
    """The shipping addresses on these members' orders, newest order first (members without
    one are left out; at most `limit` orders are read). One query."""
    ids = sorted(set(member_ids))
    found: dict[int, list[dict[str, Any]]] = {}
    if not ids:
        return found
    rows = (
        Order.objects.filter(workspace_id=workspace_id, member_id__in=ids)
        .exclude(shipping_address={})
        .order_by("-placed_at", "-pk")
        .values_list("member_id", "shipping_address")[:limit]
    )
    for member_id, address in rows:
        if isinstance(address, dict) and address:
            found.setdefault(member_id, []).append(address)
    return found


def members_first_paid_orders(
    *, workspace_id: int, member_ids: Iterable[int]
) -> dict[int, tuple[int, dt.datetime]]:
    """Each member's first paid order (its id and when it was paid, or placed when the
    platform gave no payment time), cancelled and refunded ones included: the order that
    made them a customer. Members who never paid are left out. One query."""
    ids = sorted(set(member_ids))
    if not ids:
        return {}
    paid = Q(paid_at__isnull=False) | Q(base_status__in=_PAID_STATUSES)
    first: dict[int, tuple[int, dt.datetime]] = {}
    rows = Order.objects.filter(paid, workspace_id=workspace_id, member_id__in=ids).values_list(
        "member_id", "pk", "paid_at", "placed_at"
    )
    for member_id, pk, paid_at, placed_at in rows:
        moment = paid_at or placed_at
        known = first.get(member_id)
        if known is None or (moment, pk) < (known[1], known[0]):
            first[member_id] = (pk, moment)
    return first


def members_with_paid_orders(
    *, workspace_id: int, member_ids: Iterable[int], before: dt.datetime | None = None
) -> set[int]:
    """Which of these members paid for an order (placed before `before`, when given): the
    store's customers already. One query."""
    ids = sorted(set(member_ids))
    if not ids:
        return set()
    orders = Order.objects.filter(
        Q(paid_at__isnull=False) | Q(base_status__in=_PAID_STATUSES),
        workspace_id=workspace_id,
        member_id__in=ids,
    )
    if before is not None:
        orders = orders.filter(placed_at__lt=before)
    return set(orders.values_list("member_id", flat=True).distinct())


def orders_totals_by_member(
    *, workspace_id: int, member_ids: Iterable[int], since: dt.datetime | None = None
) -> dict[int, tuple[int, dict[str, int]]]:
    """Per member: how many paid orders (placed since `since`, when given) and their revenue
    per currency in minor units (totals less refunds); cancelled orders do not count.
    Members without such orders are left out. One GROUP BY query."""
    ids = sorted(set(member_ids))
    if not ids:
        return {}
    orders = Order.objects.filter(
        Q(paid_at__isnull=False) | Q(base_status__in=_PAID_STATUSES),
        workspace_id=workspace_id,
        member_id__in=ids,
        cancelled_at__isnull=True,
    ).exclude(status=OrderStatus.CANCELLED)
    if since is not None:
        orders = orders.filter(placed_at__gte=since)
    rows = (
        orders.values("member_id", "currency")
        .annotate(n=Count("pk"), total=Sum("total_minor"), refunded=Sum("refunded_minor"))
        .order_by()
        .values_list("member_id", "currency", "n", "total", "refunded")
    )
    found: dict[int, tuple[int, dict[str, int]]] = {}
    for member_id, currency, n, total, refunded in rows:
        count, revenue = found.get(member_id, (0, {}))
        revenue[currency] = revenue.get(currency, 0) + (total or 0) - (refunded or 0)
        found[member_id] = (count + n, revenue)
    return found


def orders_totals_for_members(
    *, workspace_id: int, member_ids: Iterable[int], since: dt.datetime | None = None
) -> tuple[int, dict[str, int]]:
    """How many paid orders these members placed (since `since`) and their revenue per
    currency (minor units, less refunds), all together. One query."""
    count = 0
    revenue: dict[str, int] = {}
    per_member = orders_totals_by_member(
        workspace_id=workspace_id, member_ids=member_ids, since=since
    )
    for n, amounts in per_member.values():
        count += n
        for currency, amount in amounts.items():
            revenue[currency] = revenue.get(currency, 0) + amount
    return count, revenue
