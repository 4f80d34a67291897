"""File import: reading, mapping suggestions, bad cells, dry run, skip-bad-rows, resume after
a crash, idempotence, CSV and JSONL alike, the pages and the command."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import include, path, reverse

import circolo.commerce.urls as commerce_urls
import circolo.urls
from circolo.activity.models import Activity
from circolo.commerce.imports import runner
from circolo.commerce.imports.mapping import (
    MappingError,
    column_key,
    mapping_clean,
    mapping_suggest,
    options_suggest,
)
from circolo.commerce.imports.reading import (
    FileError,
    Layout,
    file_store,
    layout_detect,
    rows_read,
)
from circolo.commerce.imports.rows import CellError, Cells
from circolo.commerce.imports.runner import (
    ImportFailure,
    import_check,
    import_create,
    import_map,
    import_run,
    import_start,
    job_fields,
    job_options,
)
from circolo.commerce.models import (
    ImportJob,
    ImportRowError,
    MemberCommerce,
    Order,
    OrderLine,
    Product,
    ProductVariant,
    Refund,
)
from circolo.core.models import AuditLog, Workspace
from circolo.people.models import Member
from circolo.people.privacy import member_erase
from circolo.testing.commerce import commerce_snapshot, make_store

# The import pages hang under the store pages (commerce:imports:...). Until circolo/urls.py
# includes them, this module's URLconf does.
_commerce = [p for p in commerce_urls.urlpatterns if getattr(p, "namespace", None) != "imports"]
_commerce.append(path("stores/<int:store_id>/imports/", include("circolo.commerce.import_urls")))
urlpatterns = [p for p in circolo.urls.urlpatterns if getattr(p, "namespace", None) != "commerce"]
urlpatterns.append(path("w/<slug:slug>/", include((_commerce, "commerce"))))

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


@pytest.fixture(autouse=True)
def data_dir(settings: Any, tmp_path: Path) -> Path:
    settings.DATA_DIR = tmp_path
    # Owners and managers would be sent to set up two-factor authentication first.
    settings.CIRCOLO_MFA_ENFORCE = False
    return tmp_path


# --------------------------------------------------------------------------- sample files

SHOPIFY_ORDER_COLUMNS = [
    "Name", "Email", "Financial Status", "Paid at", "Fulfillment Status", "Fulfilled at",
    "Currency", "Subtotal", "Shipping", "Taxes", "Total", "Discount Code", "Discount Amount",
    "Created at", "Lineitem quantity", "Lineitem name", "Lineitem price", "Lineitem sku",
    "Lineitem discount", "Billing Name", "Billing City", "Billing Country", "Refunded Amount",
    "Cancelled at", "Id", "Phone",
]  # fmt: skip


def shop_orders(count: int = 6) -> list[dict[str, Any]]:
    """Orders as a Shopify export describes them: several lines each, guests and accounts,
    a refund, a cancellation."""
    orders = []
    for n in range(count):
        placed = dt.datetime(2025, 11, 1, 9, 30) + dt.timedelta(days=n)
        lines = [
            {"sku": f"SKU-{k}", "name": f"Tea {k}", "qty": 1 + k, "price": f"{10 + k}.50",
             "discount": "1.00" if k == 1 else "0.00"}
            for k in range(1 + n % 3)
        ]  # fmt: skip
        subtotal = sum((10 + k + 0.5) * (1 + k) for k in range(len(lines))) - (
            1 if len(lines) > 1 else 0
        )
        orders.append(
            {
                "Id": str(5000 + n),
                "Name": f"#{1001 + n}",
                "Email": f"buyer{n % 3}@example.com",
                "Financial Status": "refunded" if n == 4 else "paid",
                "Paid at": placed.strftime("%Y-%m-%d %H:%M:%S +0100"),
                "Fulfillment Status": "fulfilled" if n % 2 == 0 else "unfulfilled",
                "Fulfilled at": placed.strftime("%Y-%m-%d %H:%M:%S +0100") if n % 2 == 0 else "",
                "Currency": "EUR",
                "Subtotal": f"{subtotal:.2f}",
                "Shipping": "4.90",
                "Taxes": "0.00",
                "Total": f"{subtotal + 4.9:.2f}",
                "Discount Code": "WELCOME10" if n == 1 else "",
                "Discount Amount": "0.00",
                "Created at": placed.strftime("%Y-%m-%d %H:%M:%S +0100"),
                "Billing Name": f"Buyer {n % 3}",
                "Billing City": "Roma",
                "Billing Country": "IT",
                "Refunded Amount": "10.50" if n == 4 else "0.00",
                "Cancelled at": placed.strftime("%Y-%m-%d %H:%M:%S +0100") if n == 5 else "",
                "Phone": "",
                "lines": lines,
            }
        )
    return orders


def orders_csv(
    orders: list[dict[str, Any]], *, delimiter: str = ",", first_row_only: bool = True
) -> list[list[str]]:
    """Rows (header first) with one row per line; order fields only on an order's first row,
    as Shopify writes them (Name, Email and Created at repeat)."""
    rows = [SHOPIFY_ORDER_COLUMNS]
    repeated = {"Name", "Email", "Created at", "Id", "Currency"}
    for order in orders:
        for index, line in enumerate(order["lines"]):
            cells = []
            for column in SHOPIFY_ORDER_COLUMNS:
                if column == "Lineitem quantity":
                    cells.append(str(line["qty"]))
                elif column == "Lineitem name":
                    cells.append(line["name"])
                elif column == "Lineitem price":
                    cells.append(line["price"])
                elif column == "Lineitem sku":
                    cells.append(line["sku"])
                elif column == "Lineitem discount":
                    cells.append(line["discount"])
                elif index == 0 or not first_row_only or column in repeated:
                    cells.append(order[column])
                else:
                    cells.append("")
            rows.append(cells)
    return rows


def csv_bytes(rows: list[list[str]], *, delimiter: str = ",", encoding: str = "utf-8") -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode(encoding)


def orders_jsonl(orders: list[dict[str, Any]]) -> bytes:
    """The same orders as JSONL: one object per line, every field on every line, nested."""
    lines = []
    for order in orders:
        for line in order["lines"]:
            record = {key: value for key, value in order.items() if key != "lines"}
            record["Lineitem"] = {
                "quantity": line["qty"],
                "name": line["name"],
                "price": float(line["price"]),
                "sku": line["sku"],
                "discount": line["discount"],
            }
            lines.append(json.dumps(record))
    return ("\n".join(lines) + "\n").encode()


JSONL_MAPPING = {
    "order_id": "Id", "number": "Name", "email": "Email", "status": "Financial Status",
    "paid_at": "Paid at", "fulfillment_status": "Fulfillment Status",
    "fulfilled_at": "Fulfilled at", "currency": "Currency", "subtotal": "Subtotal",
    "shipping": "Shipping", "tax": "Taxes", "total": "Total", "discount_codes": "Discount Code",
    "discount": "Discount Amount", "placed_at": "Created at", "quantity": "Lineitem.quantity",
    "title": "Lineitem.name", "unit_price": "Lineitem.price", "sku": "Lineitem.sku",
    "line_discount": "Lineitem.discount", "customer_name": "Billing Name",
    "city": "Billing City", "country": "Billing Country", "refund_amount": "Refunded Amount",
    "cancelled_at": "Cancelled at",
}  # fmt: skip


def file_store_new(workspace: Workspace) -> Any:
    return make_store(workspace, platform="file", secret="")


def new_job(store: Any, kind: str, content: bytes, name: str = "export.csv") -> ImportJob:
    return import_create(store=store, kind=kind, file_name=name, chunks=[content], actor=None)


def run_import(
    store: Any,
    kind: str,
    content: bytes,
    *,
    name: str = "export.csv",
    mapping: dict[str, str] | None = None,
    options: dict[str, str] | None = None,
    skip_bad_rows: bool = False,
    batch_rows: int = runner.BATCH_ROWS,
) -> ImportJob:
    job = new_job(store, kind, content, name)
    job = import_map(
        job=job,
        mapping=mapping if mapping is not None else job_fields(job),
        options={**job_options(job), **(options or {})},
    )
    job = import_check(job_id=job.pk)
    job = import_start(job=job, skip_bad_rows=skip_bad_rows, actor=None)
    return import_run(job_id=job.pk, batch_rows=batch_rows)


def problems(job: ImportJob, *, dry_run: bool = True) -> list[tuple[int, str, str]]:
    return list(
        ImportRowError.objects.filter(job=job, dry_run=dry_run)
        .order_by("line", "pk")
        .values_list("line", "field", "reason")
    )


def other_store(slug: str) -> Any:
    return file_store_new(Workspace.objects.create(name=slug.title(), slug=slug))


# --------------------------------------------------------------------------- mapping


def test_shopify_order_export_columns_are_suggested() -> None:
    suggested = mapping_suggest("orders", SHOPIFY_ORDER_COLUMNS)
    assert suggested["order_id"] == "Id"
    assert suggested["number"] == "Name"
    assert suggested["placed_at"] == "Created at"
    assert suggested["status"] == "Financial Status"
    assert suggested["fulfillment_status"] == "Fulfillment Status"
    assert suggested["quantity"] == "Lineitem quantity"
    assert suggested["unit_price"] == "Lineitem price"
    assert suggested["title"] == "Lineitem name"
    assert suggested["sku"] == "Lineitem sku"
    assert suggested["line_discount"] == "Lineitem discount"
    assert suggested["discount"] == "Discount Amount"
    assert suggested["discount_codes"] == "Discount Code"
    assert suggested["total"] == "Total"
    assert suggested["tax"] == "Taxes"
    assert suggested["customer_name"] == "Billing Name"
    assert suggested["refund_amount"] == "Refunded Amount"
    # One column serves one field.
    assert len(set(suggested.values())) == len(suggested)


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (
            ["ID ordine", "Data ordine", "Valuta", "Totale", "Quantità", "Prezzo unitario",
             "Codice articolo", "E-mail", "Città", "Stato"],
            {"order_id": "ID ordine", "placed_at": "Data ordine", "currency": "Valuta",
             "total": "Totale", "quantity": "Quantità", "unit_price": "Prezzo unitario",
             "sku": "Codice articolo", "email": "E-mail", "city": "Città", "status": "Stato"},
        ),
        (
            ["ID pedido", "Fecha del pedido", "Moneda", "Total", "Cantidad", "Precio unitario",
             "Correo electrónico", "Ciudad", "Estado", "Impuestos", "Gastos de envío"],
            {"order_id": "ID pedido", "placed_at": "Fecha del pedido", "currency": "Moneda",
             "total": "Total", "quantity": "Cantidad", "unit_price": "Precio unitario",
             "email": "Correo electrónico", "city": "Ciudad", "status": "Estado",
             "tax": "Impuestos", "shipping": "Gastos de envío"},
        ),
    ],
)  # fmt: skip
def test_italian_and_spanish_columns_are_suggested(
    columns: list[str], expected: dict[str, str]
) -> None:
    assert mapping_suggest("orders", columns) == expected


def test_customer_and_product_exports_are_suggested() -> None:
    customers = mapping_suggest(
        "customers",
        ["Customer ID", "First Name", "Last Name", "Email", "Accepts Email Marketing",
         "Default Address City", "Default Address Country Code", "Phone"],
    )  # fmt: skip
    assert customers == {
        "customer_id": "Customer ID",
        "email": "Email",
        "phone": "Phone",
        "first_name": "First Name",
        "last_name": "Last Name",
        "city": "Default Address City",
        "country": "Default Address Country Code",
        "accepts_marketing": "Accepts Email Marketing",
    }
    products = mapping_suggest(
        "products", ["Handle", "Title", "Variant SKU", "Variant Price", "Image Src", "Status"]
    )
    assert products == {
        "product_id": "Handle",
        "title": "Title",
        "status": "Status",
        "image_url": "Image Src",
        "sku": "Variant SKU",
        "price": "Variant Price",
    }
    assert column_key("  Quantità / Qtà ") == "quantita qta"
    # A JSONL of Circolo's own field names maps onto itself.
    own = ["order_id", "placed_at", "total", "quantity", "unit_price", "email"]
    assert mapping_suggest("orders", own) == {name: name for name in own}


def test_options_are_guessed_from_the_cells() -> None:
    from circolo.commerce.imports.reading import RawRow

    sample = [RawRow(line=2, values={"Totale": "1.234,50", "Data": "31/12/2025"})]
    options = options_suggest(
        {"total": "Totale", "placed_at": "Data"}, sample, time_zone="Europe/Rome"
    )
    assert options == {"decimal": ",", "dates": "dmy", "time_zone": "Europe/Rome"}
    us = [RawRow(line=2, values={"Total": "1,234.50", "Date": "12/31/2025"})]
    assert options_suggest({"total": "Total", "placed_at": "Date"}, us, time_zone="UTC") == {
        "decimal": ".",
        "dates": "mdy",
        "time_zone": "UTC",
    }


def test_mapping_errors_name_each_field() -> None:
    with pytest.raises(MappingError) as error:
        mapping_clean(
            "orders",
            ["Id", "Total"],
            {"order_id": "Id", "total": "Id", "quantity": "Nope"},
            {"decimal": ";", "dates": "dmy", "time_zone": "Mars/Olympus"},
        )
    errors = error.value.errors
    assert set(errors) >= {"total", "quantity", "placed_at", "unit_price", "decimal", "time_zone"}
    assert "already used" in errors["total"]
    assert "Nope" in errors["quantity"]
    with pytest.raises(MappingError) as error:
        mapping_clean("customers", ["Name"], {"name": "Name"}, {})
    assert "customer_id" in error.value.errors


# --------------------------------------------------------------------------- reading


def _stored(tmp_path: Path, content: bytes, name: str) -> tuple[Path, Layout]:
    from circolo.commerce.imports.reading import format_of

    stored = file_store([content], tmp_path / "in", suffix=Path(name).suffix, max_bytes=10**7)
    fmt = format_of(name, stored.path, stored.encoding)
    return stored.path, layout_detect(stored.path, file_format=fmt, encoding=stored.encoding)


def test_csv_bom_semicolons_windows_encoding_and_line_numbers(tmp_path: Path) -> None:
    text = 'Id;Città;Note\r\n1;Forlì;"two\nlines"\r\n\r\n2;Cádiz;ok\r\n3;x;y;extra\r\n'
    path, layout = _stored(tmp_path, codecs.BOM_UTF8 + text.encode(), "a.csv")
    assert (layout.encoding, layout.delimiter, layout.columns) == (
        "utf-8-sig",
        ";",
        ("Id", "Città", "Note"),
    )
    rows = list(rows_read(path, layout))
    assert [row.line for row in rows] == [2, 5, 6]
    assert rows[0].values == {"Id": "1", "Città": "Forlì", "Note": "two\nlines"}
    assert "4 cells" in rows[2].error
    assert [row.line for row in rows_read(path, layout, start=1)] == [5, 6]

    path, layout = _stored(tmp_path, text.encode("cp1252"), "b.csv")
    assert layout.encoding == "cp1252"
    assert next(iter(rows_read(path, layout))).values["Città"] == "Forlì"

    tabbed, layout = _stored(tmp_path, "Id\tName\n1\tAda\n".encode("utf-16"), "c.txt")
    assert (layout.encoding, layout.delimiter) == ("utf-16", "\t")
    assert next(iter(rows_read(tabbed, layout))).values == {"Id": "1", "Name": "Ada"}


def test_jsonl_flattens_objects_and_reports_bad_lines(tmp_path: Path) -> None:
    content = (
        b'{"id": 1, "customer": {"email": "a@example.com"}, "tags": ["x", "y"], "gift": null}\n'
        b"\n"
        b"{not json}\n"
        b"[1, 2]\n"
        b'{"id": 2, "paid": true, "total": 12.5}\n'
    )
    path, layout = _stored(tmp_path, content, "data.jsonl")
    assert layout.columns == ("id", "customer.email", "tags", "gift", "paid", "total")
    rows = list(rows_read(path, layout))
    assert [row.line for row in rows] == [1, 3, 4, 5]
    assert rows[0].values == {"id": "1", "customer.email": "a@example.com", "tags": "x, y",
                              "gift": ""}  # fmt: skip
    assert "not valid JSON" in rows[1].error
    assert "not a JSON object" in rows[2].error
    assert rows[3].values == {"id": "2", "paid": "true", "total": "12.5"}


def test_unreadable_files_are_refused_with_a_reason(tmp_path: Path) -> None:
    with pytest.raises(FileError, match="empty"):
        file_store([b""], tmp_path, suffix=".csv", max_bytes=100)
    with pytest.raises(FileError, match="larger than"):
        file_store([b"x" * 101], tmp_path, suffix=".csv", max_bytes=100)
    assert not list(tmp_path.iterdir())  # nothing half-written stays behind
    with pytest.raises(FileError, match="JSON object"):
        _stored(tmp_path, b"[1]\n[2]\n", "a.jsonl")


def test_cells_read_numbers_dates_and_codes() -> None:
    cells = Cells({"decimal": ",", "dates": "dmy", "time_zone": "Europe/Rome"})
    assert str(cells.decimal("€ 1.234,50")) == "1234.50"
    assert cells.amount("-5,00", discount=True) == 5
    with pytest.raises(CellError, match="decimal comma"):
        cells.decimal("12.50")
    assert cells.moment("31/12/2025 18:30") == dt.datetime(2025, 12, 31, 17, 30, tzinfo=dt.UTC)
    assert cells.moment("2025-06-01 10:00:00 +0200") == dt.datetime(2025, 6, 1, 8, tzinfo=dt.UTC)
    us = Cells({"decimal": ".", "dates": "mdy", "time_zone": "UTC"})
    assert str(us.decimal("1,234.50 EUR")) == "1234.50"
    with pytest.raises(CellError, match="decimal point"):
        us.decimal("12,50")
    assert us.moment("12/31/2025") == dt.datetime(2025, 12, 31, tzinfo=dt.UTC)
    with pytest.raises(CellError):
        us.moment("31/12/2025")
    assert us.quantity("3.0") == 3
    with pytest.raises(CellError, match="whole number"):
        us.quantity("2.5")
    assert us.currency(" eur ") == "EUR"
    with pytest.raises(CellError, match="ISO 4217"):
        us.currency("EURO")


# --------------------------------------------------------------------------- bad rows


BAD_ORDERS = (
    "order id,placed at,currency,total,quantity,unit price,sku,email\n"
    "A1,2025-11-01 10:00,EUR,20.00,2,10.00,MUG,ada@example.com\n"  # 2: good
    "A2,2025-11-01 10:00,EUR,twenty,1,10.00,MUG,ada@example.com\n"  # 3: bad number
    "A3,2025-13-45,EUR,10.00,1,10.00,MUG,ada@example.com\n"  # 4: bad date
    "A4,2025-11-01 10:00,XXX,10.00,1,10.00,MUG,ada@example.com\n"  # 5: unknown currency
    "A5,,EUR,10.00,1,10.00,MUG,ada@example.com\n"  # 6: missing required field
    "A6,2025-11-01 10:00,EUR,10.00,-1,10.00,MUG,ada@example.com\n"  # 7: negative quantity
    "A7,2025-11-01 10:00,EUR,10.00,1,10.00,MUG,not-an-email\n"  # 8: bad email
    "A8,2025-11-01 10:00,EUR,10.00,1,10.00,MUG,bob@example.com\n"  # 9: good, bad 2nd line
    "A8,2025-11-01 10:00,EUR,10.00,1,,TEA,bob@example.com\n"  # 10: missing unit price
    "A9,2025-11-02 10:00,EUR,5.00,1,5.00,TEA,cy@example.com\n"  # 11: good
)


def test_every_kind_of_bad_cell_is_reported_with_line_and_column(workspace: Workspace) -> None:
    store = file_store_new(workspace)
    job = new_job(store, "orders", BAD_ORDERS.encode())
    assert job_fields(job) == {
        "order_id": "order id", "placed_at": "placed at", "currency": "currency",
        "total": "total", "email": "email", "sku": "sku", "quantity": "quantity",
        "unit_price": "unit price",
    }  # fmt: skip
    job = import_check(job_id=job.pk)
    found = problems(job)
    by_line = {line: (column, reason) for line, column, reason in found}
    assert by_line[3][0] == "total" and "not a number" in by_line[3][1]
    assert by_line[4][0] == "placed at" and "date" in by_line[4][1]
    assert by_line[5][0] == "currency" and "ISO 4217" in by_line[5][1]
    assert by_line[6][0] == "placed at" and "Missing" in by_line[6][1]
    assert by_line[7][0] == "quantity" and "negative" in by_line[7][1]
    assert by_line[8][0] == "email" and "not-an-email" in by_line[8][1]
    assert by_line[10][0] == "unit price" and "Missing" in by_line[10][1]
    # The good line of order A8 is reported too: its order is left out whole.
    assert by_line[9][0] == "order id" and "line 10" in by_line[9][1]
    assert sorted(by_line) == [3, 4, 5, 6, 7, 8, 9, 10]
    assert (job.status, job.total_rows, job.rows_ok, job.rows_bad) == ("checked", 10, 2, 8)


def test_dry_run_writes_nothing_but_its_report(workspace: Workspace) -> None:
    store = file_store_new(workspace)
    job = new_job(store, "orders", csv_bytes(orders_csv(shop_orders())))
    job = import_check(job_id=job.pk)
    assert job.status == "checked" and job.rows_bad == 0 and job.rows_ok == job.total_rows
    assert not Order.objects.exists()
    assert not Member.objects.exists()
    assert not Activity.objects.exists()
    assert not ImportRowError.objects.exists()


def test_a_run_with_bad_rows_needs_the_skip_choice_and_reports_every_bad_row(
    workspace: Workspace,
) -> None:
    store = file_store_new(workspace)
    job = import_check(job_id=new_job(store, "orders", BAD_ORDERS.encode()).pk)
    with pytest.raises(ImportFailure, match="8 bad rows"):
        import_start(job=job, skip_bad_rows=False, actor=None)
    assert not Order.objects.exists()
    job = import_start(job=job, skip_bad_rows=True, actor=None)
    job = import_run(job_id=job.pk)
    assert job.status == "done"
    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["A1", "A9"]
    assert (job.rows_done, job.rows_ok, job.rows_bad) == (10, 2, 8)
    assert [line for line, _c, _r in problems(job, dry_run=False)] == [3, 4, 5, 6, 7, 8, 9, 10]
    assert job.created == {"created": 2}


def test_import_start_needs_a_dry_run_first(workspace: Workspace) -> None:
    store = file_store_new(workspace)
    job = new_job(store, "orders", BAD_ORDERS.encode())
    with pytest.raises(ImportFailure, match="dry run"):
        import_start(job=job, skip_bad_rows=True, actor=None)
    with pytest.raises(ImportFailure, match="dry run"):
        import_run(job_id=job.pk)


# --------------------------------------------------------------------------- imports


def test_shopify_orders_csv_imports_orders_lines_customers_and_refunds(
    workspace: Workspace,
) -> None:
    store = file_store_new(workspace)
    job = run_import(store, "orders", csv_bytes(orders_csv(shop_orders())))
    assert (job.status, job.rows_bad, job.rows_ok) == ("done", 0, 12)
    assert job.created == {"created": 6}
    assert Order.objects.filter(store=store).count() == 6
    assert OrderLine.objects.filter(order__store=store).count() == 12
    order = Order.objects.get(store=store, external_id="5002")
    assert order.number == "#1003"
    assert order.status == "fulfilled"
    assert order.placed_at == dt.datetime(2025, 11, 3, 8, 30, tzinfo=dt.UTC)
    assert order.total_minor == 1050 + 2 * 1150 - 100 + 3 * 1250 + 490
    lines = order.lines.values_list("external_id", "quantity", "unit_price_minor", "discount_minor")
    assert sorted(lines) == [
        ("SKU-0", 1, 1050, 0),
        ("SKU-1", 2, 1150, 100),
        ("SKU-2", 3, 1250, 0),
    ]
    assert Order.objects.get(store=store, external_id="5005").status == "cancelled"
    refunded = Order.objects.get(store=store, external_id="5004")
    assert (refunded.refunded_minor, refunded.status) == (1050, "partially_refunded")
    assert Refund.objects.get(store=store).external_id == "5004-refund"
    assert Member.objects.filter(workspace=workspace).count() == 3
    ada = Member.objects.get(workspace=workspace, identities__value="buyer0@example.com")
    assert ada.display_name == "Buyer 0"
    assert MemberCommerce.objects.get(member=ada).order_count == 2
    kinds = set(Activity.objects.filter(workspace=workspace).values_list("kind", flat=True))
    assert kinds == {"order", "order_paid", "order_fulfilled", "order_cancelled", "refund"}


def test_the_same_file_twice_changes_nothing(workspace: Workspace) -> None:
    store = file_store_new(workspace)
    content = csv_bytes(orders_csv(shop_orders()))
    run_import(store, "orders", content)
    before = commerce_snapshot(workspace)
    activities = Activity.objects.filter(workspace=workspace).count()
    again = run_import(store, "orders", content)
    assert again.status == "done"
    assert set(again.created) == {"unchanged"}
    assert commerce_snapshot(workspace) == before
    assert Activity.objects.filter(workspace=workspace).count() == activities


def test_a_finished_import_keeps_no_copy_of_the_file(workspace: Workspace) -> None:
    store = file_store_new(workspace)
    job = run_import(store, "orders", csv_bytes(orders_csv(shop_orders())))
    assert job.status == "done"
    assert not runner.job_path(job).exists()
    # The report and the counts stay; the same file again still changes nothing.
    assert job.rows_ok > 0
    assert set(run_import(store, "orders", csv_bytes(orders_csv(shop_orders()))).created) == {
        "unchanged"
    }


def test_an_erasure_deletes_pending_uploads_that_name_the_person(
    workspace: Workspace, django_capture_on_commit_callbacks: Any
) -> None:
    store = file_store_new(workspace)
    content = csv_bytes(orders_csv(shop_orders()))
    run_import(store, "orders", content)  # done: its file is gone already
    pending = new_job(store, "orders", content)  # uploaded again, never run
    unrelated = new_job(
        store, "orders", content.replace(b"buyer0@example.com", b"zed@example.com"), "other.csv"
    )
    unrelated_path = runner.job_path(unrelated)
    ada = Member.objects.get(workspace=workspace, identities__value="buyer0@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        erasure = member_erase(member=ada, actor=None, reason="asked by email")
    assert erasure.counts["import_files"] == 1
    assert not runner.job_path(pending).exists()
    pending.refresh_from_db()
    assert pending.status == "failed" and "erasure" in pending.error
    assert unrelated_path.exists()


def test_csv_and_jsonl_of_the_same_orders_end_alike(workspace: Workspace) -> None:
    orders = shop_orders()
    store = file_store_new(workspace)
    run_import(store, "orders", csv_bytes(orders_csv(orders), delimiter=","))
    jsonl_store = other_store("jsonl")
    job = run_import(
        jsonl_store, "orders", orders_jsonl(orders), name="orders.jsonl", mapping=JSONL_MAPPING
    )
    assert job.file_format == "jsonl" and job.rows_bad == 0
    assert commerce_snapshot(jsonl_store.workspace) == commerce_snapshot(workspace)


def test_an_orders_rows_spread_over_the_file_and_batches_are_all_imported(
    workspace: Workspace,
) -> None:
    orders = shop_orders()
    rows = orders_csv(orders, first_row_only=False)
    header, body = rows[0], rows[1:]
    shuffled = [header, *body[::2], *body[1::2]]  # every order's lines apart
    store = file_store_new(workspace)
    job = run_import(store, "orders", csv_bytes(shuffled), batch_rows=2)
    assert job.rows_bad == 0
    reference = other_store("reference")
    run_import(reference, "orders", csv_bytes(rows))
    assert commerce_snapshot(workspace) == commerce_snapshot(reference.workspace)


def test_resume_after_a_crash_mid_file_ends_like_an_uninterrupted_import(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = csv_bytes(orders_csv(shop_orders(12)))
    store = file_store_new(workspace)
    job = new_job(store, "orders", content)
    job = import_check(job_id=import_map(job=job, mapping=job_fields(job),
                                         options=job_options(job)).pk)  # fmt: skip
    job = import_start(job=job, skip_bad_rows=False, actor=None)

    real_write = runner._write
    calls = {"n": 0}

    def crashing(store: Any, kind: str, records: list[Any]) -> list[str]:
        calls["n"] += 1
        outcomes = real_write(store, kind, records)
        if calls["n"] == 3:
            raise RuntimeError("worker killed")  # after writing: the batch must roll back
        return outcomes

    monkeypatch.setattr(runner, "_write", crashing)
    with pytest.raises(RuntimeError):
        import_run(job_id=job.pk, batch_rows=4)
    job.refresh_from_db()
    assert job.status == "failed" and "worker killed" in job.error
    committed = job.rows_done
    assert 0 < committed < job.total_rows
    assert Order.objects.filter(store=store).count() < 12

    monkeypatch.setattr(runner, "_write", real_write)
    job = import_run(job_id=job.pk, batch_rows=4)
    assert job.status == "done"
    assert job.rows_done == job.total_rows == 24
    assert job.rows_ok == 24

    reference = other_store("uninterrupted")
    run_import(reference, "orders", content)
    assert commerce_snapshot(workspace) == commerce_snapshot(reference.workspace)


def test_products_and_customers_import(workspace: Workspace) -> None:
    store = file_store_new(workspace)
    # Shopify's product export: a row per variant; image rows carry only the handle.
    products = (
        "Handle,Title,Status,Variant SKU,Variant Price,Image Src\n"
        'mug,Big mug,active,MUG-S,"12,50",https://cdn.example.com/mug.jpg\n'
        'mug,,,MUG-L,"14,00",\n'
        "mug,,,,,https://cdn.example.com/mug2.jpg\n"
        'tea,Green tea,bozza,TEA,"4,20",\n'
        "bad,Bad,sold out,BAD,1,\n"
    )
    job = run_import(store, "products", products.encode(), options={"decimal": ","},
                     skip_bad_rows=True)  # fmt: skip
    assert (job.rows_ok, job.rows_bad) == (4, 1)
    assert problems(job, dry_run=False)[0][:2] == (6, "Status")
    mug = Product.objects.get(store=store, external_id="mug")
    assert (mug.title, mug.image_url) == ("Big mug", "https://cdn.example.com/mug.jpg")
    assert sorted(ProductVariant.objects.filter(product=mug).values_list("sku", "price_minor")) == [
        ("MUG-L", 1400),
        ("MUG-S", 1250),
    ]
    assert Product.objects.get(store=store, external_id="tea").status == "draft"

    customers = (
        "Customer ID;First Name;Last Name;Email;Phone;Default Address Country Code;"
        "Accepts Email Marketing\n"
        "c1;Ada;Lovelace;ada@example.com;;GB;yes\n"
        "c2;Bruno;;;333 123 4567;IT;no\n"
        ";Nobody;;;;;\n"
        ";Cy;;;12;;\n"
    )  # fmt: skip
    job = run_import(store, "customers", customers.encode(), skip_bad_rows=True)
    assert (job.rows_ok, job.rows_bad) == (2, 2)
    found = problems(job, dry_run=False)
    assert found[0][:2] == (4, "Customer ID") and "at least" in found[0][2]
    assert found[1][:2] == (5, "Phone")
    assert Member.objects.filter(workspace=workspace, identities__value="+393331234567").exists()


# --------------------------------------------------------------------------- pages


def _url(name: str, workspace: Workspace, store: Any, *args: Any) -> str:
    return reverse(f"commerce:imports:{name}", args=[workspace.slug, store.pk, *args])


def test_web_flow_upload_map_check_run_report(
    manager: Any, workspace: Workspace, django_capture_on_commit_callbacks: Any
) -> None:
    store = file_store_new(workspace)
    client = manager.client
    listing = client.get(_url("list", workspace, store))
    assert listing.status_code == 200
    assert "No file has been imported" in listing.content.decode()

    upload = SimpleUploadedFile("orders.csv", BAD_ORDERS.encode(), content_type="text/csv")
    response = client.post(_url("list", workspace, store), {"kind": "orders", "file": upload})
    job = ImportJob.objects.get(store=store)
    assert response.status_code == 302 and response["Location"] == _url(
        "mapping", workspace, store, job.pk
    )
    stored = runner.job_path(job)
    assert stored.parent == Path(runner.import_folder(workspace.pk))
    assert stored.name == f"{job.file_sha256}.csv"
    assert AuditLog.objects.filter(workspace=workspace, action="import.create").exists()

    page = client.get(_url("mapping", workspace, store, job.pk)).content.decode()
    assert '<option value="order id" selected>' in page  # suggested
    assert "required" in page
    assert "ada@example.com" in page  # examples of the columns

    form = {f"field_{name}": column for name, column in job_fields(job).items()}
    form.update({"decimal": ".", "dates": "dmy", "time_zone": "UTC"})
    missing = {**form, "field_total": ""}
    response = client.post(_url("mapping", workspace, store, job.pk), missing)
    assert response.status_code == 400
    assert "Choose the column for “Total”" in response.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_url("mapping", workspace, store, job.pk), form)
    assert response.status_code == 302
    report = client.get(_url("report", workspace, store, job.pk))
    html = report.content.decode()
    assert "8 rows have problems" in html
    assert "not a number" in html
    download = client.get(_url("report_csv", workspace, store, job.pk))
    lines = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert lines[0] == ["line", "column", "reason"]
    assert [row[0] for row in lines[1:]] == ["3", "4", "5", "6", "7", "8", "9", "10"]

    refused = client.post(_url("start", workspace, store, job.pk), {})
    assert refused.status_code == 302
    job.refresh_from_db()
    assert job.status == "checked" and not Order.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_url("start", workspace, store, job.pk), {"skip_bad_rows": "on"})
    assert response["Location"] == _url("run", workspace, store, job.pk)
    job.refresh_from_db()
    assert job.status == "done"
    assert Order.objects.filter(store=store).count() == 2
    final = client.get(_url("run", workspace, store, job.pk)).content.decode()
    assert 'data-stat="ok">2<' in final and 'data-stat="bad">8<' in final
    assert "not a number" in final
    progress = client.get(_url("progress", workspace, store, job.pk), HTTP_HX_REQUEST="true")
    assert progress["HX-Redirect"] == _url("run", workspace, store, job.pk)
    listing = client.get(_url("list", workspace, store)).content.decode()
    assert "orders.csv" in listing


def test_progress_bar_while_running(manager: Any, workspace: Workspace) -> None:
    store = file_store_new(workspace)
    job = import_check(job_id=new_job(store, "orders", BAD_ORDERS.encode()).pk)
    job = import_start(job=job, skip_bad_rows=True, actor=None)
    ImportJob.objects.filter(pk=job.pk).update(rows_done=5)
    client = manager.client
    fragment = client.get(_url("progress", workspace, store, job.pk), HTTP_HX_REQUEST="true")
    html = fragment.content.decode()
    assert 'hx-trigger="every 1s"' in html
    assert 'value="50"' in html
    page = client.get(_url("run", workspace, store, job.pk)).content.decode()
    assert "<progress" in page and "Resume" in page


def test_failed_run_is_shown_and_resumed_from_the_page(
    manager: Any, workspace: Workspace, django_capture_on_commit_callbacks: Any
) -> None:
    store = file_store_new(workspace)
    job = import_check(job_id=new_job(store, "orders", BAD_ORDERS.encode()).pk)
    job = import_start(job=job, skip_bad_rows=True, actor=None)
    stored = runner.job_path(job)
    stored.rename(stored.with_suffix(".moved"))
    with pytest.raises(ImportFailure):
        import_run(job_id=job.pk)
    page = manager.client.get(_url("run", workspace, store, job.pk)).content.decode()
    assert "no longer on the server" in page
    stored.with_suffix(".moved").rename(stored)
    with django_capture_on_commit_callbacks(execute=True):
        manager.client.post(_url("resume", workspace, store, job.pk))
    job.refresh_from_db()
    assert job.status == "done" and job.rows_ok == 2


def test_upload_errors_are_clear(manager: Any, workspace: Workspace, settings: Any) -> None:
    store = file_store_new(workspace)
    settings.CIRCOLO_IMPORT_MAX_BYTES = 100
    big = SimpleUploadedFile("big.csv", b"a,b\n" + b"1,2\n" * 50)
    response = manager.client.post(_url("list", workspace, store), {"kind": "orders", "file": big})
    assert response.status_code == 400
    assert "larger than" in response.content.decode()
    empty = SimpleUploadedFile("empty.csv", b"")
    response = manager.client.post(
        _url("list", workspace, store), {"kind": "orders", "file": empty}
    )
    assert response.status_code == 400
    settings.CIRCOLO_IMPORT_MAX_BYTES = 10_000
    not_json = SimpleUploadedFile("x.jsonl", b"[1]\n")
    response = manager.client.post(
        _url("list", workspace, store), {"kind": "orders", "file": not_json}
    )
    assert response.status_code == 400 and "JSON object" in response.content.decode()
    response = manager.client.post(_url("list", workspace, store), {"kind": "pets"})
    assert response.status_code == 400
    assert not ImportJob.objects.exists()
    # The unreadable upload was stored to be read, then removed.
    assert not list(runner.import_folder(workspace.pk).glob("*"))


def test_problem_download_cannot_smuggle_formulas(
    manager: Any, workspace: Workspace, django_capture_on_commit_callbacks: Any
) -> None:
    store = file_store_new(workspace)
    content = b"order id,placed at,=HYPERLINK(1),quantity,unit price\nA1,2025-11-01,x,1,1\n"
    job = new_job(store, "orders", content)
    job = import_map(
        job=job,
        mapping={"order_id": "order id", "placed_at": "placed at", "total": "=HYPERLINK(1)",
                 "quantity": "quantity", "unit_price": "unit price"},
        options=job_options(job),
    )  # fmt: skip
    import_check(job_id=job.pk)
    download = manager.client.get(_url("report_csv", workspace, store, job.pk))
    rows = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert rows[1][:2] == ["2", "'=HYPERLINK(1)"]


def test_outsiders_get_404_and_analysts_403(
    outsider: Any, analyst: Any, manager: Any, workspace: Workspace, other_workspace: Workspace
) -> None:
    store = file_store_new(workspace)
    job = new_job(store, "orders", BAD_ORDERS.encode())
    addresses = [
        ("get", _url("list", workspace, store)),
        ("get", _url("mapping", workspace, store, job.pk)),
        ("get", _url("report", workspace, store, job.pk)),
        ("get", _url("report_csv", workspace, store, job.pk)),
        ("post", _url("start", workspace, store, job.pk)),
        ("get", _url("run", workspace, store, job.pk)),
        ("post", _url("resume", workspace, store, job.pk)),
        ("get", _url("progress", workspace, store, job.pk)),
    ]
    for method, address in addresses:
        assert getattr(outsider.client, method)(address).status_code == 404, address
        assert getattr(analyst.client, method)(address).status_code == 403, address
    # Their own workspace's address with our store or job: still nothing to see.
    theirs = file_store_new(other_workspace)
    assert outsider.client.get(_url("list", other_workspace, store)).status_code == 404
    assert outsider.client.get(_url("report", other_workspace, theirs, job.pk)).status_code == 404
    assert manager.client.get(_url("report", workspace, store, job.pk + 999)).status_code == 404


# --------------------------------------------------------------------------- command


def test_command_dry_run_then_import_then_resume(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = file_store_new(workspace)
    source = tmp_path / "orders.csv"
    source.write_bytes(BAD_ORDERS.encode())
    out = io.StringIO()
    call_command("import_commerce", store.pk, "orders", str(source), "--dry-run",
                 "--no-progress", stdout=out)  # fmt: skip
    text = out.getvalue()
    assert "10 rows, 2 good, 8 bad" in text
    assert "line 3, total:" in text
    assert not Order.objects.exists()
    with pytest.raises(CommandError, match="8 bad rows"):
        call_command("import_commerce", store.pk, "orders", str(source), "--no-progress",
                     stdout=io.StringIO())  # fmt: skip

    def crash(*args: Any, **kwargs: Any) -> list[str]:
        raise RuntimeError("power cut")

    monkeypatch.setattr(runner, "_write", crash)
    with pytest.raises(RuntimeError):
        call_command("import_commerce", store.pk, "orders", str(source), "--skip-bad-rows",
                     "--no-progress", stdout=io.StringIO())  # fmt: skip
    monkeypatch.undo()
    out = io.StringIO()
    call_command("import_commerce", store.pk, "orders", str(source), "--no-progress", stdout=out)
    assert "Resuming import" in out.getvalue()
    assert "done: 2 rows imported, 8 bad rows skipped" in out.getvalue()
    assert ImportJob.objects.filter(store=store).count() == 1
    assert Order.objects.count() == 2


def test_command_mapping_argument(workspace: Workspace, tmp_path: Path) -> None:
    store = file_store_new(workspace)
    source = tmp_path / "people.jsonl"
    source.write_bytes(b'{"mail": "ada@example.com", "who": "Ada"}\n')
    with pytest.raises(CommandError, match="customer id, the email or the phone"):
        call_command("import_commerce", store.pk, "customers", str(source), "--no-progress",
                     stdout=io.StringIO())  # fmt: skip
    out = io.StringIO()
    # With its progress bars this time (tqdm writes to stderr).
    call_command(
        "import_commerce", store.pk, "customers", str(source),
        "--mapping", '{"email": "mail", "name": "who"}', stdout=out,
    )  # fmt: skip
    assert "1 rows imported" in out.getvalue()
    assert Member.objects.get(workspace=workspace).display_name == "Ada"


def test_tasks_take_ids_and_are_safe_to_run_twice(workspace: Workspace) -> None:
    from circolo.commerce.import_tasks import import_check_task, import_run_task

    store = file_store_new(workspace)
    job = new_job(store, "orders", csv_bytes(orders_csv(shop_orders(3))))
    assert import_check_task(job.pk) == "checked"
    assert import_check_task(job.pk) == "checked"  # the report is replaced, not doubled
    job.refresh_from_db()
    assert ImportRowError.objects.filter(job=job).count() == 0
    import_start(job=job, skip_bad_rows=False, actor=None)
    assert import_run_task(job.pk) == "done"
    before = commerce_snapshot(workspace)
    assert import_run_task(job.pk) == "done"
    assert import_check_task(job.pk) == "done"  # a started import is not checked again
    assert commerce_snapshot(workspace) == before
    assert import_run_task(job.pk + 1000) == "missing"
