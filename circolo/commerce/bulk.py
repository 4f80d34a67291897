"""Batched writes of commerce records: the file import's path, with services.py's semantics.

`orders_upsert_bulk` ends in the same state as calling `services.order_upsert` on each order
in turn (tests compare the two with commerce_snapshot): the newest state wins by the
platform's updated_at, refunds are facts that link to their order, each distinct customer is
resolved to a member once per call, activities go through one activity_record_bulk call and
the members' buying summaries are recomputed once. What changes is the number of queries: a
fixed handful per batch instead of dozens per order.

The same external id twice in one call is applied in input order (the second occurrence in
a later round), as one-by-one calls would.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from django.db import IntegrityError, connection, models, transaction
from django.db.models import QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from circolo.activity.services import ActivityIn, activity_record_bulk
from circolo.commerce.models import (
    Order,
    OrderLine,
    Product,
    ProductVariant,
    Refund,
    RefundLine,
    Store,
)
from circolo.commerce.schema import CustomerIn, OrderIn, PayloadError, ProductIn, RefundIn
from circolo.commerce.services import (
    CREATED,
    STALE,
    UNCHANGED,
    UPDATED,
    UPSERT_ATTEMPTS,
    Customer,
    _check_order,
    _customer_identities,
    customers_resolve,
    members_commerce_refresh,
    order_event_activities,
    order_fill,
    order_settle_with,
    refund_activity,
)
from circolo.people.models import Identity, IdentityKind
from circolo.people.normalise import (
    CITY_MAX_LENGTH,
    DISPLAY_NAME_MAX_LENGTH,
    InputError,
    clean_country,
    clean_text,
    normalise_identity,
)

# Values per `IN (...)` list: stays under SQLite's bound on query parameters.
IN_CHUNK = 900
# Parameters per multi-row INSERT: under SQLite's bound (32,766) and PostgreSQL's (65,535).
INSERT_PARAMS = 30_000
# Rows per UPDATE of bulk_update (a CASE per field: larger statements get slower).
UPDATE_BATCH = 500
RESOLVED, EMPTY = "resolved", "empty"

# Order fields order_upsert writes from the payload; compared to skip rows that stay the same.
ORDER_FIELDS = (
    "member_id",
    "customer_identity_id",
    "customer_external_id",
    "email",
    "shipping_address",
    "number",
    "currency",
    "subtotal_minor",
    "discount_minor",
    "shipping_minor",
    "tax_minor",
    "total_minor",
    "discount_codes",
    "base_status",
    "placed_at",
    "paid_at",
    "fulfilled_at",
    "cancelled_at",
    "landing_site",
    "referring_code",
    "source_updated_at",
    "refunded_minor",
    "status",
)
LINE_FIELDS = (
    "product_id",
    "variant_id",
    "product_external_id",
    "variant_external_id",
    "sku",
    "title",
    "quantity",
    "unit_price_minor",
    "discount_minor",
)

T = TypeVar("T")


def _chunks(values: Sequence[T], size: int = IN_CHUNK) -> Iterable[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _filter_in(queryset: QuerySet[Any], lookup: str, values: Iterable[Any]) -> list[Any]:
    """queryset.filter(<lookup>__in=values), evaluated in chunks of IN_CHUNK values."""
    ordered = sorted(set(values))
    found: list[Any] = []
    for chunk in _chunks(ordered):
        found.extend(queryset.filter(**{f"{lookup}__in": chunk}))
    return found


def _rounds(keys: Sequence[str]) -> list[list[int]]:
    """Positions grouped so no key repeats in a group: the n-th occurrences of every key form
    round n. Rounds run in order, so repeats apply in input order."""
    seen: dict[str, int] = {}
    rounds: list[list[int]] = []
    for position, key in enumerate(keys):
        occurrence = seen.get(key, 0)
        seen[key] = occurrence + 1
        if occurrence == len(rounds):
            rounds.append([])
        rounds[occurrence].append(position)
    return rounds


def _with_retries(write: Callable[[], list[str]]) -> list[str]:
    for _attempt in range(UPSERT_ATTEMPTS):
        try:
            with transaction.atomic():
                return write()
        except IntegrityError:
            # A concurrent writer (a webhook) inserted one of our rows: read again, go again.
            continue
    raise IntegrityError("rows kept changing while the batch was written")


def _outcome(existing: dt.datetime | None, incoming: dt.datetime | None) -> str:
    # The rule of services.product_upsert/order_upsert: older never wins, equal is unchanged.
    if existing is None or incoming is None:
        return UPDATED
    if incoming < existing:
        return STALE
    return UPDATED if incoming > existing else UNCHANGED


# --------------------------------------------------------------------------- customers


def _customers_resolve(
    store: Store,
    wanted: Sequence[tuple[CustomerIn, dt.datetime | None]],
    *,
    seen_by_activities: bool = False,
) -> dict[CustomerIn, Customer | None]:
    """Each distinct customer record resolved once, in order of first appearance, seen at the
    earliest time given for it (the activity handlers widen last seen to the later ones).

    `seen_by_activities`: each record comes with an activity at its seen time (an order's
    "placed"), so customers already fully known are looked up, not resolved again.
    """
    earliest: dict[CustomerIn, dt.datetime | None] = {}
    for customer, seen_at in wanted:
        if customer in earliest:
            known = earliest[customer]
            if seen_at is not None and (known is None or seen_at < known):
                earliest[customer] = seen_at
        else:
            earliest[customer] = seen_at
    found: dict[CustomerIn, Customer | None] = (
        dict(_customers_known(store, list(earliest))) if seen_by_activities else {}
    )
    found.update(
        customers_resolve(
            store=store,
            wanted=[(customer, at) for customer, at in earliest.items() if customer not in found],
        )
    )
    return found


def _customers_known(store: Store, customers: Sequence[CustomerIn]) -> dict[CustomerIn, Customer]:
    """The customers member_resolve would only look up: every identity of theirs is stored,
    on one live member, as verified as it comes, and their name, city and country add
    nothing. Resolving them again would change nothing but the member's first and last seen,
    which the activity handlers move to cover the order's activities anyway. Three queries
    for the whole batch, instead of a resolution per customer."""
    plans: dict[CustomerIn, list[tuple[str, str, str, bool]]] = {}
    attrs: dict[CustomerIn, tuple[str, str, str]] = {}
    wanted: dict[str, set[str]] = {IdentityKind.EMAIL: set(), IdentityKind.PHONE: set()}
    ids: set[str] = set()
    for customer in customers:
        if customer.languages:
            continue  # new languages would be added: leave it to member_resolve
        country = customer.country.upper() if len(customer.country) == 2 else ""
        try:
            attrs[customer] = (
                clean_text(customer.display_name[:200], "display_name", DISPLAY_NAME_MAX_LENGTH),
                clean_text(customer.city[:120], "city", CITY_MAX_LENGTH),
                clean_country(country),
            )
        except InputError:
            continue
        usable = []
        for ident in _customer_identities(store, customer):
            try:
                value = normalise_identity(ident.kind, ident.value, country or None)
            except InputError:
                continue
            usable.append((ident.channel.strip().lower(), ident.kind, value, ident.verified))
            if ident.kind in wanted:
                wanted[ident.kind].add(value)
            else:
                ids.add(value)
        if usable:
            plans[customer] = usable
    if not plans:
        return {}
    rows: list[Identity] = []
    base = Identity.objects.filter(workspace_id=store.workspace_id).select_related("member")
    for kind, values in wanted.items():
        rows += _filter_in(base.filter(kind=kind), "value", values)
    rows += _filter_in(
        base.filter(channel=store.channel, kind=IdentityKind.CUSTOMER_ID), "value", ids
    )
    # Emails and phones match on any channel, other kinds on their own (member_resolve).
    across: dict[tuple[str, str], list[Identity]] = {}
    exact: dict[tuple[str, str, str], Identity] = {}
    for row in rows:
        across.setdefault((row.kind, row.value), []).append(row)
        exact[(row.channel, row.kind, row.value)] = row
    known: dict[CustomerIn, Customer] = {}
    for customer, usable in plans.items():
        matched: list[Identity] = []
        complete = True
        for channel, kind, value, verified in usable:
            stored = exact.get((channel, kind, value))
            if stored is None or (verified and not stored.verified):
                complete = False
                break
            matched += across.get((kind, value), []) if kind in wanted else [stored]
        if not complete or len({row.member_id for row in matched}) != 1:
            continue
        member = matched[0].member
        if member.merged_into_id is not None:
            continue
        name, city, country = attrs[customer]
        if (
            (name and not member.display_name)
            or (city and not member.city)
            or (country and not member.country)
        ):
            continue
        channel, kind, value, _verified = usable[0]
        known[customer] = Customer(member=member, identity=exact[(channel, kind, value)])
    return known


def customers_upsert_bulk(*, store: Store, customers: Sequence[CustomerIn]) -> list[str]:
    """Resolve customer records to members (services.customer_upsert for many): each distinct
    record once, all in one transaction. Per position: "resolved", or "empty" when the record
    names nobody. PayloadError (nothing written) when a record has no usable identity."""
    with transaction.atomic():
        resolved = _customers_resolve(
            store, [(customer, customer.created_at) for customer in customers]
        )
    return [RESOLVED if resolved[customer] is not None else EMPTY for customer in customers]


# --------------------------------------------------------------------------- products


def products_upsert_bulk(*, store: Store, products: Sequence[ProductIn]) -> list[str]:
    """services.product_upsert for many products: created / updated / unchanged / stale per
    position; variants are created or moved onto their product; order lines waiting for
    these products (by id, variant id or SKU) are linked. One transaction."""
    for product in products:
        if not product.external_id:
            raise PayloadError("id", _("The product has no id."))
    outcomes = [""] * len(products)
    with transaction.atomic():
        for positions in _rounds([product.external_id for product in products]):
            batch = [products[position] for position in positions]
            done = _with_retries(lambda batch=batch: _products_round(store, batch))  # type: ignore[misc]
            for position, outcome in zip(positions, done, strict=True):
                outcomes[position] = outcome
    return outcomes


def _products_round(store: Store, products: Sequence[ProductIn]) -> list[str]:
    existing = {
        row.external_id: row
        for row in _filter_in(
            Product.objects.select_for_update(no_key=True).filter(store=store),
            "external_id",
            [product.external_id for product in products],
        )
    }
    outcomes: list[str] = []
    written: list[tuple[ProductIn, Product]] = []
    new_rows: list[Product] = []
    changed_rows: list[Product] = []
    for product in products:
        row = existing.get(product.external_id)
        if row is None:
            outcome = CREATED
            row = Product(
                workspace_id=store.workspace_id, store=store, external_id=product.external_id
            )
            new_rows.append(row)
        else:
            outcome = _outcome(row.source_updated_at, product.updated_at)
            if outcome == STALE:
                outcomes.append(STALE)
                continue
            changed_rows.append(row)
        row.title = product.title[:300] or product.external_id
        row.titles = dict(product.titles)
        row.url = product.url[:500]
        row.image_url = product.image_url[:500]
        row.status = product.status if product.status in Product.Status.values else "active"
        row.source_updated_at = product.updated_at
        written.append((product, row))
        outcomes.append(outcome)
    Product.objects.bulk_create(new_rows)
    if changed_rows:
        now = timezone.now()
        for row in changed_rows:
            row.updated_at = now
        Product.objects.bulk_update(
            changed_rows,
            ["title", "titles", "url", "image_url", "status", "source_updated_at", "updated_at"],
            batch_size=UPDATE_BATCH,
        )
    _variants_write(store, written)
    _lines_link_products(store, [row for _product, row in written])
    return outcomes


def _variants_write(store: Store, written: Sequence[tuple[ProductIn, Product]]) -> None:
    # Later mentions of a variant id win, as with update_or_create one product at a time.
    wanted: dict[str, tuple[Product, Any]] = {}
    for product, row in written:
        for variant in product.variants:
            wanted.pop(variant.external_id, None)
            wanted[variant.external_id] = (row, variant)
    if not wanted:
        return
    existing = {
        v.external_id: v
        for v in _filter_in(ProductVariant.objects.filter(store=store), "external_id", wanted)
    }
    new: list[ProductVariant] = []
    changed: list[ProductVariant] = []
    for external_id, (product_row, variant) in wanted.items():
        values = {
            "workspace_id": store.workspace_id,
            "product_id": product_row.pk,
            "sku": variant.sku[:100],
            "title": variant.title[:300],
            "price_minor": variant.price_minor,
            "currency": store.currency,
        }
        stored = existing.get(external_id)
        if stored is None:
            new.append(ProductVariant(store=store, external_id=external_id, **values))
        elif any(getattr(stored, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(stored, name, value)
            changed.append(stored)
    ProductVariant.objects.bulk_create(new)
    ProductVariant.objects.bulk_update(
        changed,
        ["workspace_id", "product_id", "sku", "title", "price_minor", "currency"],
        batch_size=UPDATE_BATCH,
    )


def _lines_link_products(store: Store, products: Sequence[Product]) -> None:
    """services._link_lines_to_product for each product in turn, on lines read once."""
    if not products:
        return
    variants: dict[int, list[ProductVariant]] = {}
    for variant in _filter_in(
        ProductVariant.objects.filter(store=store).order_by("pk"),
        "product_id",
        [p.pk for p in products],
    ):
        variants.setdefault(variant.product_id, []).append(variant)
    for group in variants.values():
        group.sort(key=lambda v: v.pk)
    product_ids = {p.external_id for p in products}
    variant_ids = {v.external_id for group in variants.values() for v in group} - {""}
    skus = {v.sku for group in variants.values() for v in group} - {""}
    base = OrderLine.objects.filter(order__store=store).only(
        "pk", "product_id", "variant_id", "product_external_id", "variant_external_id", "sku"
    )
    lines: dict[int, OrderLine] = {}
    for queryset, lookup, values in (
        (base.filter(product__isnull=True), "product_external_id", product_ids),
        (base.filter(variant__isnull=True), "variant_external_id", variant_ids),
        (base.filter(product__isnull=True, product_external_id=""), "sku", skus),
    ):
        for line in _filter_in(queryset, lookup, values):
            lines.setdefault(line.pk, line)
    if not lines:
        return
    by_product: dict[str, list[OrderLine]] = {}
    by_variant: dict[str, list[OrderLine]] = {}
    by_sku: dict[str, list[OrderLine]] = {}
    for line in lines.values():
        by_product.setdefault(line.product_external_id, []).append(line)
        by_variant.setdefault(line.variant_external_id, []).append(line)
        by_sku.setdefault(line.sku, []).append(line)
    changed: dict[int, OrderLine] = {}
    for product in products:
        for line in by_product.get(product.external_id, ()):
            if line.product_id is None:
                line.product_id = product.pk
                changed[line.pk] = line
        for variant in variants.get(product.pk, ()):
            if variant.external_id:
                for line in by_variant.get(variant.external_id, ()):
                    if line.variant_id is None:
                        line.variant_id = variant.pk
                        line.product_id = product.pk
                        changed[line.pk] = line
            if variant.sku:
                for line in by_sku.get(variant.sku, ()):
                    if line.product_id is None and line.product_external_id == "":
                        line.product_id = product.pk
                        line.variant_id = variant.pk
                        changed[line.pk] = line
    OrderLine.objects.bulk_update(
        list(changed.values()), ["product_id", "variant_id"], batch_size=UPDATE_BATCH
    )


# --------------------------------------------------------------------------- orders


def orders_upsert_bulk(
    *, store: Store, orders: Sequence[OrderIn], merge_lines: bool = False
) -> list[str]:
    """services.order_upsert for many orders: created / updated / unchanged / stale per
    position, in one transaction (PayloadError before anything is written for a malformed
    order; a customer that cannot be resolved rolls the whole call back).

    `merge_lines`: lines are upserted by id and never removed, and a known refund gains the
    lines it did not have yet: for files where one order's rows are spread over batches.
    Without it an order's lines are replaced, as order_upsert does.
    """
    for order in orders:
        _check_order(order)
    outcomes = [""] * len(orders)
    with transaction.atomic():
        for positions in _rounds([order.external_id for order in orders]):
            batch = [orders[position] for position in positions]
            done = _with_retries(
                lambda batch=batch: _orders_round(store, batch, merge_lines)  # type: ignore[misc]
            )
            for position, outcome in zip(positions, done, strict=True):
                outcomes[position] = outcome
    return outcomes


def _db_value(field: Any) -> Callable[[Any], Any] | None:
    """How a value of this field is handed to the database driver (None: as it is)."""
    ops = connection.ops
    if isinstance(field, models.DateTimeField):
        return lambda value: None if value is None else ops.adapt_datetimefield_value(value)
    if isinstance(field, models.JSONField):
        return lambda value: ops.adapt_json_value(value, field.encoder)
    return None


def _insert(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> list[int]:
    """INSERT rows of `model` (values of the fields named by `columns`, their attnames) in a
    few multi-row statements; their new ids, in order. bulk_create's SQL without its
    per-value machinery, which costs more than the database does on this path."""
    if not rows:
        return []
    meta = model._meta
    fields: list[Any] = [meta.get_field(name) for name in columns]
    converters = [_db_value(field) for field in fields]
    quote = connection.ops.quote_name
    names = ", ".join(quote(field.column) for field in fields)
    head = f"INSERT INTO {quote(meta.db_table)} ({names}) VALUES "
    one = "(" + ", ".join(["%s"] * len(fields)) + ")"
    returning = f" RETURNING {quote(meta.pk.column)}"
    ids: list[int] = []
    with connection.cursor() as cursor:
        for chunk in _chunks(rows, max(1, INSERT_PARAMS // len(fields))):
            params = [
                convert(value) if convert is not None else value
                for row in chunk
                for convert, value in zip(converters, row, strict=True)
            ]
            cursor.execute(head + ", ".join([one] * len(chunk)) + returning, params)
            ids.extend(found[0] for found in cursor.fetchall())
    return ids


def _orders_insert(rows: Sequence[Order]) -> None:
    """New orders in a few statements; each gets its id (as bulk_create would set it)."""
    if not rows:
        return
    now = timezone.now()
    columns = [f.attname for f in Order._meta.concrete_fields if not f.primary_key]
    for row in rows:
        row.created_at = row.updated_at = now
    ids = _insert(Order, columns, [[getattr(row, name) for name in columns] for row in rows])
    for row, pk in zip(rows, ids, strict=True):
        row.pk = pk
        row._state.adding = False
        row._state.db = connection.alias


def _order_values(row: Order) -> tuple[Any, ...]:
    return tuple(getattr(row, name) for name in ORDER_FIELDS)


def _orders_round(store: Store, orders: Sequence[OrderIn], merge_lines: bool) -> list[str]:
    existing = {
        row.external_id: row
        for row in _filter_in(
            Order.objects.select_for_update(no_key=True)
            .filter(store=store)
            .order_by("external_id"),
            "external_id",
            [order.external_id for order in orders],
        )
    }
    touched: set[int] = set()
    outcomes: list[str] = []
    writes: list[tuple[OrderIn, Order]] = []
    everything: list[tuple[OrderIn, Order]] = []
    before: dict[int, tuple[Any, ...]] = {}
    for order in orders:
        row = existing.get(order.external_id)
        if row is not None:
            outcome = _outcome(row.source_updated_at, order.updated_at)
            if row.member_id is not None:
                touched.add(row.member_id)
            before[id(row)] = _order_values(row)
            if outcome != STALE:
                writes.append((order, row))
        else:
            outcome = CREATED
            row = Order(workspace_id=store.workspace_id, store=store, external_id=order.external_id)
            writes.append((order, row))
        everything.append((order, row))
        outcomes.append(outcome)

    customers = _customers_resolve(
        store,
        [
            (order.customer, order.placed_at)
            for order, row in writes
            if order.customer is not None
            and not order.customer.is_empty
            and row.erased_at is None  # an erased order stays anonymous
        ],
        seen_by_activities=True,
    )
    new_rows: list[Order] = []
    for order, row in writes:
        customer = (
            customers.get(order.customer)
            if order.customer is not None and not order.customer.is_empty
            else None
        )
        if (member_id := order_fill(row, order, customer)) is not None:
            touched.add(member_id)
        if row.pk is None:
            new_rows.append(row)
    _orders_insert(new_rows)
    for row in new_rows:
        before[id(row)] = _order_values(row)

    _lines_write(store, writes, merge_lines, stored={row.pk for row in existing.values()})
    _refunds_write(store, [order for order, _row in everything], merge_lines)
    rows = list({row.pk: row for _order, row in everything}.values())
    _refunds_link(store, rows)
    _orders_settle(rows)
    changed: list[Order] = []
    fields: set[str] = set()
    for row in rows:
        now_values = _order_values(row)
        was = before[id(row)]
        if now_values != was:
            changed.append(row)
            fields.update(
                n for n, a, b in zip(ORDER_FIELDS, now_values, was, strict=True) if a != b
            )
    if changed:
        now = timezone.now()
        for row in changed:
            row.updated_at = now
        # Only the fields that moved: a CASE per field and row is what bulk_update costs.
        Order.objects.bulk_update(
            changed,
            [n for n in ORDER_FIELDS if n in fields] + ["updated_at"],
            batch_size=UPDATE_BATCH,
        )
    _orders_activities(store, rows)
    ids = sorted(touched)
    if ids:
        members_commerce_refresh(workspace_id=store.workspace_id, member_ids=ids)
    return outcomes


def _lines_write(
    store: Store, writes: Sequence[tuple[OrderIn, Order]], merge: bool, *, stored: set[int]
) -> None:
    """`stored`: ids of the orders that were in the database before this round (only they
    can have lines already)."""
    with_lines = [(order, row) for order, row in writes if order.lines]
    if not with_lines:
        return
    existing: dict[int, dict[str, OrderLine]] = {}
    for line in _filter_in(
        OrderLine.objects.all(),
        "order_id",
        [row.pk for _order, row in with_lines if row.pk in stored],
    ):
        existing.setdefault(line.order_id, {})[line.external_id] = line
    all_lines = [line for order, _row in with_lines for line in order.lines]
    products = dict(
        _filter_in(
            Product.objects.filter(store=store).values_list("external_id", "pk"),
            "external_id",
            {ln.product_external_id for ln in all_lines} - {""},
        )
    )
    variants = {
        v.external_id: v
        for v in _filter_in(
            ProductVariant.objects.filter(store=store),
            "external_id",
            {ln.variant_external_id for ln in all_lines} - {""},
        )
    }
    by_sku = {
        v.sku: v
        for v in _filter_in(
            ProductVariant.objects.filter(store=store).order_by("pk"),
            "sku",
            {ln.sku for ln in all_lines if ln.sku and not ln.variant_external_id},
        )
    }
    new: list[tuple[Any, ...]] = []
    changed: list[OrderLine] = []
    gone: list[int] = []
    for order, row in with_lines:
        known = existing.get(row.pk, {})
        for line in order.lines:
            variant = variants.get(line.variant_external_id) or (
                by_sku.get(line.sku) if not line.variant_external_id else None
            )
            product_id = products.get(line.product_external_id) or (
                variant.product_id if variant is not None else None
            )
            values = {
                "product_id": product_id,
                "variant_id": variant.pk if variant is not None else None,
                "product_external_id": line.product_external_id[:100],
                "variant_external_id": line.variant_external_id[:100],
                "sku": line.sku[:100],
                "title": line.title[:300],
                "quantity": line.quantity,
                "unit_price_minor": line.unit_price_minor,
                "discount_minor": line.discount_minor,
            }
            line_row = known.pop(line.external_id, None)
            if line_row is None:
                new.append((store.workspace_id, row.pk, line.external_id, *values.values()))
            elif any(getattr(line_row, name) != value for name, value in values.items()):
                for name, value in values.items():
                    setattr(line_row, name, value)
                changed.append(line_row)
        if not merge:
            gone.extend(line_row.pk for line_row in known.values())
    _insert(OrderLine, ("workspace_id", "order_id", "external_id", *LINE_FIELDS), new)
    OrderLine.objects.bulk_update(changed, LINE_FIELDS, batch_size=UPDATE_BATCH)
    # Lines the platform no longer lists (an order edit) go, unless a refund points at them.
    for chunk in _chunks(gone):
        OrderLine.objects.filter(pk__in=chunk, refund_lines__isnull=True).delete()


def _check_refund(refund: RefundIn) -> None:
    if not refund.external_id:
        raise PayloadError("refund.id", _("The refund has no id."))
    if not refund.order_external_id:
        raise PayloadError("refund.order_id", _("The refund does not name its order."))
    if timezone.is_naive(refund.refunded_at):
        raise PayloadError("refund.created_at", _("Give the time with a time zone."))


def _refunds_write(store: Store, orders: Sequence[OrderIn], merge: bool) -> None:
    """Store the refunds these orders carry that are not known yet (first mention wins)."""
    refunds: dict[str, RefundIn] = {}
    extra_lines: dict[str, list[Any]] = {}
    for order in orders:
        for refund in order.refunds:
            _check_refund(refund)
            if refund.external_id not in refunds:
                refunds[refund.external_id] = refund
            elif merge:
                extra_lines.setdefault(refund.external_id, []).extend(refund.lines)
    if not refunds:
        return
    known = {
        row.external_id: row
        for row in _filter_in(Refund.objects.filter(store=store), "external_id", refunds)
    }
    new_rows = [
        Refund(
            workspace_id=store.workspace_id,
            store=store,
            external_id=refund.external_id,
            order_external_id=refund.order_external_id,
            amount_minor=refund.amount_minor,
            currency=refund.currency or store.currency,
            reason=refund.reason[:300],
            refunded_at=refund.refunded_at,
        )
        for external_id, refund in refunds.items()
        if external_id not in known
    ]
    Refund.objects.bulk_create(new_rows, batch_size=UPDATE_BATCH)
    lines: list[RefundLine] = []
    for row in new_rows:
        refund = refunds[row.external_id]
        unique = {ln.line_external_id: ln for ln in refund.lines}
        lines.extend(
            RefundLine(
                workspace_id=store.workspace_id,
                refund_id=row.pk,
                line_external_id=line.line_external_id,
                quantity=line.quantity,
                amount_minor=line.amount_minor,
            )
            for line in unique.values()
        )
    RefundLine.objects.bulk_create(lines, batch_size=UPDATE_BATCH)
    if merge:
        _refund_lines_add(store, known, refunds, extra_lines)


def _refund_lines_add(
    store: Store,
    known: dict[str, Refund],
    refunds: dict[str, RefundIn],
    extra_lines: dict[str, list[Any]],
) -> None:
    """Merge mode: a refund already stored (or mentioned twice) gains its missing lines."""
    rows = dict(known)
    rows.update(
        (row.external_id, row)
        for row in _filter_in(Refund.objects.filter(store=store), "external_id", extra_lines)
    )
    wanted: dict[tuple[int, str], Any] = {}
    for external_id, row in rows.items():
        candidates = [*(refunds[external_id].lines if external_id in known else ()),
                      *extra_lines.get(external_id, ())]  # fmt: skip
        for line in candidates:
            wanted.setdefault((row.pk, line.line_external_id), line)
    if not wanted:
        return
    have = set(
        RefundLine.objects.filter(refund_id__in=sorted({key[0] for key in wanted})).values_list(
            "refund_id", "line_external_id"
        )
    )
    RefundLine.objects.bulk_create(
        [
            RefundLine(
                workspace_id=store.workspace_id,
                refund_id=refund_id,
                line_external_id=line_id,
                quantity=line.quantity,
                amount_minor=line.amount_minor,
            )
            for (refund_id, line_id), line in wanted.items()
            if (refund_id, line_id) not in have
        ],
        batch_size=UPDATE_BATCH,
    )


def _refunds_link(store: Store, orders: Sequence[Order]) -> None:
    by_external = {order.external_id: order.pk for order in orders}
    waiting = _filter_in(
        Refund.objects.filter(store=store, order__isnull=True).only("pk", "order_external_id"),
        "order_external_id",
        by_external,
    )
    for refund in waiting:
        refund.order_id = by_external[refund.order_external_id]
    Refund.objects.bulk_update(waiting, ["order_id"], batch_size=UPDATE_BATCH)
    order_ids = [order.pk for order in orders]
    lines = {
        (order_id, external_id): pk
        for order_id, external_id, pk in _filter_in(
            OrderLine.objects.values_list("order_id", "external_id", "pk"), "order_id", order_ids
        )
    }
    linked = []
    for pk, line_external_id, order_id in _filter_in(
        RefundLine.objects.filter(order_line__isnull=True).values_list(
            "pk", "line_external_id", "refund__order_id"
        ),
        "refund__order_id",
        order_ids,
    ):
        line_pk = lines.get((order_id, line_external_id))
        if line_pk is not None:
            linked.append(RefundLine(pk=pk, order_line_id=line_pk))
    RefundLine.objects.bulk_update(linked, ["order_line_id"], batch_size=UPDATE_BATCH)


def _orders_settle(orders: Sequence[Order]) -> None:
    """services._order_settle for many orders: refunded total (one query) and status."""
    refunded = dict(
        _filter_in(
            Refund.objects.values("order_id")
            .annotate(total=Sum("amount_minor"))
            .values_list("order_id", "total"),
            "order_id",
            [order.pk for order in orders],
        )
    )
    for order in orders:
        order_settle_with(order, refunded.get(order.pk) or 0)


def _orders_activities(store: Store, orders: Sequence[Order]) -> None:
    """services._order_activities for many orders, in one activity_record_bulk call."""
    members = {order.pk: order for order in orders if order.member_id is not None}
    if not members:
        return
    items: list[ActivityIn] = []
    for order in members.values():
        items.extend(order_event_activities(store, order))
    for refund in _filter_in(
        Refund.objects.filter(store=store).order_by("pk"), "order_id", list(members)
    ):
        items.append(refund_activity(store, members[refund.order_id], refund))
    activity_record_bulk(workspace=store.workspace, items=items)
