"""The demo store's books: its product catalogue and 18 months of orders and refunds.

They arrive the way a store without a connector sends them: as CSV files (products, then
orders with one row per line, refunds on the rows of the lines they refund) imported by the
file import, with a dry run first. So the demo exercises the import, member resolution by
the store's customer ids, and the order activities recorded by the commerce services.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from circolo.commerce.imports.runner import (
    import_check,
    import_check_begin,
    import_create,
    import_map,
    import_run,
    import_start,
    job_options,
)
from circolo.commerce.models import ImportJob, Store
from circolo.commerce.money import from_minor
from circolo.commerce.services import store_create
from circolo.core.models import Workspace
from circolo.demo import texts

STORE_NAME = "Bottega Aurora shop"
SALE_KINDS = frozenset({"order", "refund"})
DAY = 86_400.0

PRODUCT_COLUMNS = {"product_id": "Handle", "title": "Title", "sku": "Variant SKU",
                   "price": "Variant Price", "status": "Status"}  # fmt: skip
ORDER_COLUMNS = {
    "order_id": "Id", "number": "Name", "placed_at": "Created at", "updated_at": "Updated at",
    "status": "Financial Status", "paid_at": "Paid at", "fulfilled_at": "Fulfilled at",
    "currency": "Currency", "customer_id": "Customer Id", "email": "Email",
    "first_name": "Billing First Name", "last_name": "Billing Last Name",
    "subtotal": "Subtotal", "total": "Total", "line_id": "Lineitem id", "sku": "Lineitem sku",
    "product_id": "Lineitem product", "title": "Lineitem name", "quantity": "Lineitem quantity",
    "unit_price": "Lineitem price", "refund_id": "Refund Id", "refunded_at": "Refunded at",
    "refund_amount": "Refund Amount", "refund_quantity": "Refund Quantity",
    "refund_line_amount": "Refund Line Amount", "refund_reason": "Refund Reason",
}  # fmt: skip


@dataclass
class Sale:
    """An order or refund the activity plan drew for a person (seconds since window start)."""

    person: Any
    kind: str
    at: float
    properties: dict[str, Any]


def demo_store_ensure(*, workspace: Workspace) -> Store:
    """The demo workspace's shop (a file-import store), created once."""
    store = Store.objects.filter(workspace=workspace, name=STORE_NAME).first()
    if store is None:
        store = store_create(
            workspace=workspace, platform="file", name=STORE_NAME, currency="EUR", actor=None
        )
    return store


def orders_file_name(*, seed: int, members: int, activities: int) -> str:
    return f"demo-orders-{seed}-{members}-{activities}.csv"


def demo_books_imported(*, workspace: Workspace, seed: int, members: int, activities: int) -> bool:
    return ImportJob.objects.filter(
        workspace=workspace,
        file_name=orders_file_name(seed=seed, members=members, activities=activities),
        status=ImportJob.Status.DONE,
    ).exists()


def _price(amount: int, currency: str) -> str:
    return str(from_minor(amount, currency))


def _when(start_ts: float, at: float) -> str:
    return dt.datetime.fromtimestamp(start_ts + at, dt.UTC).isoformat()


def write_products(folder: Path) -> Path:
    path = folder / "demo-products.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(list(PRODUCT_COLUMNS.values()))
        for product in texts.PRODUCTS:
            writer.writerow(
                [product.sku, product.names["en"], product.sku,
                 _price(product.price_cents, "EUR"), "active"]
            )  # fmt: skip
    return path


def write_orders(
    folder: Path,
    *,
    name: str,
    sales: Sequence[Sale],
    start_ts: float,
    now_ts: float,
    money: Callable[[int, Any], int],
    seed: int,
) -> tuple[Path, int, int]:
    """One row per order line; a refund goes on the row of the line it refunds (the
    person's latest order not refunded yet). Returns the path, orders and refunds written."""
    rng = random.Random(seed * 31 + 5)
    orders: dict[str, dict[str, Any]] = {}
    latest: dict[int, list[str]] = {}
    refunds = 0
    for position, sale in enumerate(sorted(sales, key=lambda s: s.at)):
        person = sale.person
        if person.twin_case == "phone":
            continue  # a WhatsApp contact has no store account
        if sale.kind == "order":
            order_id = f"AUR{seed}-{position:07d}"
            currency = sale.properties["currency"]
            lines = []
            for index, sku in enumerate(sale.properties["skus"]):
                product = next(p for p in texts.PRODUCTS if p.sku == sku)
                quantity = 1 if rng.random() < 0.8 else 2
                unit = money(product.price_cents, person.country)
                lines.append({"id": f"{order_id}-{index + 1}", "sku": sku, "qty": quantity,
                              "unit": unit, "title": product.names["en"]})  # fmt: skip
            paid = sale.at
            fulfilled = sale.at + (1 + rng.random() * 3) * DAY
            orders[order_id] = {
                "person": person, "at": sale.at, "currency": currency, "lines": lines,
                "paid": paid, "fulfilled": fulfilled if start_ts + fulfilled < now_ts else None,
                "refund": None,
            }  # fmt: skip
            latest.setdefault(person.index, []).append(order_id)
        else:
            candidates = [o for o in latest.get(person.index, []) if orders[o]["refund"] is None]
            if not candidates:
                continue
            order = orders[candidates[-1]]
            at = max(sale.at, order["at"] + DAY)
            if start_ts + at >= now_ts:
                continue
            line = order["lines"][0]
            order["refund"] = {"id": f"R-{candidates[-1]}", "at": at, "line": line["id"],
                               "amount": line["unit"],
                               "reason": sale.properties.get("reason", "")}  # fmt: skip
            refunds += 1
    path = folder / name
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(list(ORDER_COLUMNS.values()))
        for order_id, order in orders.items():
            person, currency = order["person"], order["currency"]
            first, _space, last = person.display_name.partition(" ")
            total = sum(ln["qty"] * ln["unit"] for ln in order["lines"])
            refund = order["refund"]
            times = [order["at"], order["paid"]]
            times += [order["fulfilled"]] if order["fulfilled"] is not None else []
            status = "fulfilled" if order["fulfilled"] is not None else "paid"
            for line in order["lines"]:
                refunded = refund is not None and refund["line"] == line["id"]
                writer.writerow(
                    [
                        order_id, f"#{order_id[-7:]}", _when(start_ts, order["at"]),
                        _when(start_ts, max(times)), status, _when(start_ts, order["paid"]),
                        _when(start_ts, order["fulfilled"]) if order["fulfilled"] else "",
                        currency, person.customer_id, person.email, first, last,
                        _price(total, currency), _price(total, currency), line["id"],
                        line["sku"], line["sku"], line["title"], line["qty"],
                        _price(line["unit"], currency),
                        refund["id"] if refunded else "",
                        _when(start_ts, refund["at"]) if refunded else "",
                        _price(refund["amount"], currency) if refunded else "",
                        1 if refunded else "",
                        _price(refund["amount"], currency) if refunded else "",
                        refund["reason"] if refunded else "",
                    ]
                )  # fmt: skip
    return path, len(orders), refunds


def _import(store: Store, kind: str, path: Path, columns: dict[str, str]) -> ImportJob:
    with path.open("rb") as handle:
        job = import_create(
            store=store, kind=kind, file_name=path.name, chunks=iter(handle), actor=None
        )
    job = import_map(job=job, mapping=columns, options=job_options(job))
    import_check_begin(job=job)
    job = import_check(job_id=job.pk)
    job = import_start(job=job, skip_bad_rows=False, actor=None)
    return import_run(job_id=job.pk)


def demo_books_import(
    *,
    store: Store,
    sales: Sequence[Sale],
    start_ts: float,
    now_ts: float,
    money: Callable[[int, Any], int],
    seed: int,
    members: int,
    activities: int,
) -> tuple[int, int]:
    """Write the catalogue and the orders as CSV files and import them into the demo
    store. Returns (orders, refunds) imported. ImportFailure if a file is refused."""
    with tempfile.TemporaryDirectory(prefix="circolo-demo-") as folder:
        base = Path(folder)
        _import(store, ImportJob.Kind.PRODUCTS, write_products(base), PRODUCT_COLUMNS)
        name = orders_file_name(seed=seed, members=members, activities=activities)
        path, orders, refunds = write_orders(
            base, name=name, sales=sales, start_ts=start_ts, now_ts=now_ts, money=money,
            seed=seed,
        )  # fmt: skip
        job = _import(store, ImportJob.Kind.ORDERS, path, ORDER_COLUMNS)
        if job.status != ImportJob.Status.DONE:
            raise RuntimeError(f"the demo orders import ended {job.status}: {job.error}")
    return orders, refunds
