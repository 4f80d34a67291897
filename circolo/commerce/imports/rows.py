"""Mapped rows into schema records, with every problem named by line, column and reason.

Rows that belong together form a group: the lines of one order, the variants of one product
(consecutive rows with the same id; Shopify's exports write an order's fields on its first
row only, so a group's order fields are taken from whichever row gives them). A group with
any problem is left out whole and each of its rows is reported; nothing half of an order is
imported. Batches end between groups, so a resumed run never starts inside one.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils.translation import gettext as _

from circolo.commerce.imports.mapping import (
    DECIMAL_COMMA,
    ORDERS,
    PRODUCTS,
    column_key,
    targets,
)
from circolo.commerce.imports.reading import RawRow
from circolo.commerce.money import exponent
from circolo.commerce.schema import (
    CustomerIn,
    LineIn,
    OrderIn,
    ProductIn,
    RefundIn,
    RefundLineIn,
    VariantIn,
)
from circolo.core.services import ISO_4217_CODES
from circolo.people.normalise import (
    InputError,
    clean_country,
    clean_languages,
    normalise_email,
    normalise_phone,
)

Record = CustomerIn | ProductIn | OrderIn

YEAR_MIN, YEAR_MAX = 1900, 2100
# Entries kept by the memos of repeated cells (times, emails) before they start over.
MEMO_SIZE = 50_000
# Larger amounts (in major units) are mistakes, and would not fit the 64-bit minor units.
AMOUNT_MAX = Decimal(10) ** 12
_NUMERIC_DATE = re.compile(
    r"^(\d{1,4})[/.\-](\d{1,2})[/.\-](\d{1,4})"
    r"(?:[ T,]+(\d{1,2})[:.](\d{2})(?:[:.](\d{2}))?)?\s*(Z|[+-]\d{2}:?\d{2})?$"
)
_SPACE_BEFORE_OFFSET = re.compile(r"\s+(?=(?:Z|[+-]\d{2}:?\d{2})$)")
_THOUSANDS_POINT = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_THOUSANDS_COMMA = re.compile(r"^-?\d{1,3}(?:\.\d{3})+(?:,\d+)?$")
_MONEY_NOISE = re.compile(r"[\s\u00a0\u202f'’€$£¥]")
_MONEY_CODE = re.compile(r"^[A-Za-z]{3}(?=[\d-])|(?<=\d)[A-Za-z]{3}$")
_TRUE = frozenset({"true", "yes", "y", "1", "x", "si", "sì", "sí", "vero", "verdadero"})
_FALSE = frozenset({"false", "no", "n", "0", "", "falso"})
_SPLIT_LIST = re.compile(r"[,;|]")

# Status words of shops, spreadsheets and three languages -> (base status, cancelled).
ORDER_STATUSES: dict[str, tuple[str, bool]] = {
    **dict.fromkeys(
        ("pending", "authorized", "authorised", "partially paid", "partially_paid", "unpaid",
         "on hold", "on-hold", "awaiting payment", "in attesa", "in sospeso", "da pagare",
         "non pagato", "pendiente", "en espera", "no pagado", "pending payment"),
        ("pending", False)),
    **dict.fromkeys(
        ("paid", "processing", "refunded", "partially refunded", "partially_refunded",
         "pagato", "pagata", "in lavorazione", "rimborsato", "parzialmente rimborsato",
         "pagado", "procesando", "reembolsado", "parcialmente reembolsado"),
        ("paid", False)),
    **dict.fromkeys(
        ("fulfilled", "completed", "complete", "shipped", "delivered", "evaso", "spedito",
         "consegnato", "completato", "enviado", "entregado", "completado"),
        ("fulfilled", False)),
    **dict.fromkeys(
        ("cancelled", "canceled", "voided", "void", "failed", "annullato", "cancellato",
         "cancelado", "anulado"),
        ("pending", True)),
}  # fmt: skip
FULFILMENT_STATUSES: dict[str, bool] = {
    **dict.fromkeys(("fulfilled", "shipped", "delivered", "evaso", "spedito", "consegnato",
                     "enviado", "entregado"), True),
    **dict.fromkeys(("unfulfilled", "partial", "partially fulfilled", "pending", "restocked",
                     "non evaso", "parziale", "no enviado", "parcial"), False),
}  # fmt: skip
PRODUCT_STATUSES: dict[str, str] = {
    **dict.fromkeys(("active", "published", "attivo", "pubblicato", "activo", "publicado"),
                    "active"),
    **dict.fromkeys(("draft", "bozza", "borrador"), "draft"),
    **dict.fromkeys(("archived", "archiviato", "archivado"), "archived"),
}  # fmt: skip
DISCOUNT_FIELDS = frozenset({"discount", "line_discount"})
ORDER_HEADER = (
    "number", "placed_at", "updated_at", "status", "fulfillment_status", "paid_at",
    "fulfilled_at", "cancelled_at", "currency", "customer_id", "email", "phone",
    "first_name", "last_name", "customer_name", "city", "country", "subtotal", "discount",
    "shipping", "tax", "total", "discount_codes",
)  # fmt: skip
PRODUCT_HEADER = ("title", "status", "url", "image_url", "updated_at")
# Fields whose later rows may differ without a conflict: Shopify lists more images in rows
# of their own, and the product keeps its first.
FIRST_WINS = frozenset({"image_url"})
_validate_url = URLValidator(schemes=["http", "https"])


def _id_too_long() -> str:
    return _("An id has at most 100 characters.")


class CellError(ValueError):
    """A cell that cannot be read as its field's type; the message is for the report."""


@dataclass(frozen=True)
class Problem:
    line: int
    field: str
    reason: str


@dataclass
class Group:
    """Consecutive rows that make one record (or one bad row): their lines, the record when
    they are all good, else the problems."""

    lines: list[int]
    record: Record | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.record is not None and not self.problems


@dataclass
class Batch:
    groups: list[Group]

    @property
    def rows(self) -> int:
        return sum(len(group.lines) for group in self.groups)


# --------------------------------------------------------------------------- cells


class Cells:
    """Reads text cells as numbers, amounts, times, codes, following the file's options."""

    def __init__(self, options: dict[str, str]) -> None:
        self.comma = options.get("decimal") == DECIMAL_COMMA
        self.dates = options.get("dates", "dmy")
        self.zone = zoneinfo.ZoneInfo(options.get("time_zone") or "UTC")
        self._moments: dict[str, dt.datetime] = {}

    def decimal(self, raw: str) -> Decimal | None:
        text = _MONEY_CODE.sub("", _MONEY_NOISE.sub("", raw))
        if not text:
            return None
        if self.comma:
            if "." in text and not _THOUSANDS_COMMA.match(text):
                raise CellError(
                    _("“%(value)s” is not a number written with a decimal comma.") % {"value": raw}
                )
            text = text.replace(".", "").replace(",", ".")
        elif "," in text:
            if not _THOUSANDS_POINT.match(text):
                raise CellError(
                    _("“%(value)s” is not a number written with a decimal point.") % {"value": raw}
                )
            text = text.replace(",", "")
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise CellError(_("“%(value)s” is not a number.") % {"value": raw}) from None
        if not value.is_finite():
            raise CellError(_("“%(value)s” is not a number.") % {"value": raw})
        return value

    def amount(self, raw: str, *, discount: bool = False) -> Decimal | None:
        value = self.decimal(raw)
        if value is not None and value < 0:
            if discount:
                # Some exports write discounts as negative amounts: same discount.
                return -value
            raise CellError(_("An amount cannot be negative (“%(value)s”).") % {"value": raw})
        return value

    def quantity(self, raw: str) -> int | None:
        value = self.decimal(raw)
        if value is None:
            return None
        if value != value.to_integral_value():
            raise CellError(_("“%(value)s” is not a whole number.") % {"value": raw})
        if value < 0:
            raise CellError(_("A quantity cannot be negative (“%(value)s”).") % {"value": raw})
        if value > 1_000_000_000:
            raise CellError(_("“%(value)s” is too large for a quantity.") % {"value": raw})
        return int(value)

    def moment(self, raw: str) -> dt.datetime | None:
        # An order's time repeats on each of its rows: read each text once.
        known = self._moments.get(raw)
        if known is not None:
            return known
        if len(self._moments) > MEMO_SIZE:
            self._moments.clear()
        value = self._moment(raw)
        if value is not None:
            self._moments[raw] = value
        return value

    def _moment(self, raw: str) -> dt.datetime | None:
        text = raw.strip()
        if not text:
            return None
        value = self._iso(text) or self._numeric(text)
        if value is None:
            raise CellError(_("“%(value)s” is not a date and time.") % {"value": raw})
        if not YEAR_MIN <= value.year <= YEAR_MAX:
            raise CellError(
                _("“%(value)s” is not a date between %(first)d and %(last)d.")
                % {"value": raw, "first": YEAR_MIN, "last": YEAR_MAX}
            )
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.zone)
        return value.astimezone(dt.UTC)

    def _iso(self, text: str) -> dt.datetime | None:
        candidate = _SPACE_BEFORE_OFFSET.sub("", text.replace(" UTC", "Z"))
        if len(candidate) < 8 or not candidate[:4].isdigit():
            return None
        try:
            return dt.datetime.fromisoformat(candidate)
        except ValueError:
            return None

    def _numeric(self, text: str) -> dt.datetime | None:
        match = _NUMERIC_DATE.match(text)
        if match is None:
            return None
        a, b, c, hour, minute, second, offset = match.groups()
        if len(a) == 4:
            year, month, day = int(a), int(b), int(c)
        elif self.dates == "mdy":
            month, day, year = int(a), int(b), int(c)
        else:
            day, month, year = int(a), int(b), int(c)
        if year < 100:
            year += 2000
        try:
            value = dt.datetime(
                year, month, day, int(hour or 0), int(minute or 0), int(second or 0)
            )
        except ValueError:
            return None
        if offset:
            zone = dt.UTC if offset == "Z" else _offset(offset)
            value = value.replace(tzinfo=zone)
        return value

    def currency(self, raw: str) -> str | None:
        code = raw.strip().upper()
        if not code:
            return None
        if code not in ISO_4217_CODES:
            raise CellError(
                _("“%(value)s” is not an ISO 4217 currency code such as EUR.") % {"value": raw}
            )
        return code

    def flag(self, raw: str) -> bool | None:
        word = raw.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False if word else None
        raise CellError(_("“%(value)s” is not yes or no.") % {"value": raw})

    def url(self, raw: str) -> str:
        text = raw.strip()
        if not text:
            return ""
        try:
            _validate_url(text)
        except ValidationError:
            raise CellError(_("“%(value)s” is not a web address.") % {"value": raw}) from None
        if len(text) > 500:
            raise CellError(_("A web address has at most 500 characters."))
        return text


def _offset(text: str) -> dt.timezone:
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


# --------------------------------------------------------------------------- reading a row


def _status(raw: str) -> tuple[str, bool]:
    found = ORDER_STATUSES.get(column_key(raw)) or ORDER_STATUSES.get(raw.strip().lower())
    if found is None:
        raise CellError(
            _("Unknown order status “%(value)s”: use pending, paid, fulfilled or cancelled.")
            % {"value": raw}
        )
    return found


def _fulfilment(raw: str) -> bool:
    found = FULFILMENT_STATUSES.get(column_key(raw))
    if found is None:
        raise CellError(
            _("Unknown fulfilment status “%(value)s”: use fulfilled or unfulfilled.")
            % {"value": raw}
        )
    return found


def _product_status(raw: str) -> str:
    found = PRODUCT_STATUSES.get(column_key(raw))
    if found is None:
        raise CellError(
            _("Unknown product status “%(value)s”: use active, draft or archived.") % {"value": raw}
        )
    return found


def _text_list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in _SPLIT_LIST.split(raw) if item.strip())


class RowReader:
    """Reads the mapped cells of a row into typed values, collecting one problem per cell."""

    def __init__(self, kind: str, mapping: dict[str, str], options: dict[str, str]) -> None:
        self.kind = kind
        self.mapping = mapping
        self.cells = Cells(options)
        readers: dict[str, Callable[[str], Any]] = {}
        for target in targets(kind):
            if target.name in mapping:
                readers[target.name] = self._reader(target.name)
        self.readers = readers
        self._emails: dict[str, str] = {}

    def _reader(self, name: str) -> Callable[[str], Any]:
        cells = self.cells
        if name in DISCOUNT_FIELDS:
            return lambda raw: cells.amount(raw, discount=True)
        if name in {"price", "subtotal", "shipping", "tax", "total", "unit_price",
                    "refund_amount", "refund_line_amount"}:  # fmt: skip
            return cells.amount
        if name in {"quantity", "refund_quantity"}:
            return cells.quantity
        if name in {"created_at", "updated_at", "placed_at", "paid_at", "fulfilled_at",
                    "cancelled_at", "refunded_at"}:  # fmt: skip
            return cells.moment
        if name == "currency":
            return cells.currency
        if name == "accepts_marketing":
            return cells.flag
        if name in {"url", "image_url"}:
            return cells.url
        if name == "status":
            return _product_status if self.kind == PRODUCTS else _status
        if name == "fulfillment_status":
            return _fulfilment
        if name in {"discount_codes"}:
            return _text_list
        return str.strip

    def column(self, name: str) -> str:
        return self.mapping.get(name, name)

    def email_problem(self, email: str) -> str:
        """Why the email is not valid ("" when it is); a customer's email repeats on every
        order, so each is checked once."""
        known = self._emails.get(email)
        if known is None:
            if len(self._emails) > MEMO_SIZE:
                self._emails.clear()
            try:
                normalise_email(email)
                known = ""
            except InputError as error:
                known = error.message
            self._emails[email] = known
        return known

    def read(self, row: RawRow) -> tuple[dict[str, Any], list[Problem]]:
        values: dict[str, Any] = {}
        problems: list[Problem] = []
        cells = row.values
        for name, reader in self.readers.items():
            raw = cells.get(self.mapping[name], "")
            if not raw:
                continue
            try:
                value = reader(raw)
            except CellError as error:
                problems.append(Problem(row.line, self.mapping[name], str(error)))
                continue
            if value is not None and value != "" and value != ():
                values[name] = value
        return values, problems


# --------------------------------------------------------------------------- groups


def groups_read(
    kind: str, rows: Iterator[RawRow], mapping: dict[str, str], options: dict[str, str], *,
    store_currency: str,
) -> Iterator[Group]:  # fmt: skip
    """The file's rows as groups, each with its record or its problems, in file order."""
    reader = RowReader(kind, mapping, options)
    key_field = {ORDERS: "order_id", PRODUCTS: "product_id"}.get(kind)
    key_column = mapping.get(key_field or "", "")
    build: Callable[[list[tuple[RawRow, dict[str, Any], list[Problem]]]], Group]
    if kind == ORDERS:
        build = _OrderBuilder(reader, store_currency).build
    elif kind == PRODUCTS:
        build = _ProductBuilder(reader, store_currency).build
    else:
        build = _CustomerBuilder(reader).build
    pending: list[tuple[RawRow, dict[str, Any], list[Problem]]] = []
    pending_key: str | None = None
    for row in rows:
        if row.error:
            key = None
            parsed: tuple[dict[str, Any], list[Problem]] = ({}, [Problem(row.line, "", row.error)])
        else:
            key = row.values.get(key_column, "").strip() if key_field else None
            parsed = reader.read(row)
        if pending and (key is None or key == "" or key != pending_key):
            yield build(pending)
            pending = []
        pending.append((row, *parsed))
        pending_key = key or None
    if pending:
        yield build(pending)


def batches_read(groups: Iterator[Group], *, batch_rows: int) -> Iterator[Batch]:
    """Groups gathered into batches of about `batch_rows` rows, never splitting a group."""
    batch: list[Group] = []
    rows = 0
    for group in groups:
        batch.append(group)
        rows += len(group.lines)
        if rows >= batch_rows:
            yield Batch(batch)
            batch, rows = [], 0
    if batch:
        yield Batch(batch)


Parsed = list[tuple[RawRow, dict[str, Any], list[Problem]]]


def _finish(
    reader: RowReader, rows: Parsed, record: Record | None, problems: list[Problem], what: str
) -> Group:
    """A group's result: its record, or problems covering every one of its rows."""
    lines = [row.line for row, _values, _problems in rows]
    problems = [*(p for _row, _values, row_problems in rows for p in row_problems), *problems]
    if not problems:
        return Group(lines=lines, record=record)
    bad_lines = {problem.line for problem in problems}
    first_bad = min(bad_lines)
    id_column = reader.column({"order": "order_id", "product": "product_id"}.get(what, ""))
    for line in lines:
        if line not in bad_lines:
            if what == "order":
                reason = _("Not imported: line %(line)d of the same order has a problem.")
            else:
                reason = _("Not imported: line %(line)d of the same product has a problem.")
            problems.append(Problem(line, id_column, reason % {"line": first_bad}))
    problems.sort(key=lambda p: p.line)
    return Group(lines=lines, problems=problems)


def _merge_header(
    reader: RowReader, rows: Parsed, names: Sequence[str], problems: list[Problem]
) -> dict[str, Any]:
    """The group's header fields: the first row giving each one; a later row giving another
    value for it is a problem (two different records under one id)."""
    header: dict[str, Any] = {}
    where: dict[str, int] = {}
    for row, values, _row_problems in rows:
        for name in names:
            if name not in values:
                continue
            if name not in header:
                header[name] = values[name]
                where[name] = row.line
            elif values[name] != header[name] and name not in FIRST_WINS:
                problems.append(
                    Problem(
                        row.line,
                        reader.column(name),
                        _("This differs from line %(line)d of the same record.")
                        % {"line": where[name]},
                    )
                )
    return header


def _minor(
    reader: RowReader, value: Decimal | None, currency: str, name: str, line: int,
    problems: list[Problem],
) -> int:  # fmt: skip
    if value is None:
        return 0
    if abs(value) > AMOUNT_MAX:
        problems.append(Problem(line, reader.column(name), _("This amount is too large.")))
        return 0
    # money.to_minor's rule (half-even past the currency's digits) on the parsed Decimal.
    scaled = value.scaleb(exponent(currency)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    return int(scaled)


def _customer(
    reader: RowReader, values: dict[str, Any], line: int, problems: list[Problem], *,
    name_field: str,
) -> CustomerIn | None:  # fmt: skip
    """The customer the cells name, checked the way customer_resolve will use it."""
    country = ""
    if "country" in values:
        try:
            country = clean_country(values["country"])
        except InputError as error:
            problems.append(Problem(line, reader.column("country"), error.message))
    email = values.get("email", "")
    if email:
        reason = reader.email_problem(email)
        if reason:
            problems.append(Problem(line, reader.column("email"), reason))
    phone = values.get("phone", "")
    external_id = values.get("customer_id", "")
    if phone and not (external_id or email):
        # The phone is this customer's only identity: it has to be a real number.
        try:
            normalise_phone(phone, country or None)
        except InputError as error:
            problems.append(Problem(line, reader.column("phone"), error.message))
    languages: tuple[str, ...] = ()
    if "languages" in values:
        try:
            languages = tuple(clean_languages(_text_list(values["languages"])))
        except InputError as error:
            problems.append(Problem(line, reader.column("languages"), error.message))
    first = values.get("first_name", "")
    last = values.get("last_name", "")
    if not (first or last):
        first = values.get(name_field, "")
    if len(external_id) > 100:
        problems.append(Problem(line, reader.column("customer_id"), _id_too_long()))
    customer = CustomerIn(
        external_id=external_id,
        email=email,
        phone=phone,
        first_name=first[:100],
        last_name=last[:100],
        city=values.get("city", "")[:120],
        country=country,
        languages=languages,
        accepts_marketing=values.get("accepts_marketing"),
        created_at=values.get("created_at"),
        updated_at=values.get("updated_at"),
    )
    return None if customer.is_empty else customer


class _CustomerBuilder:
    def __init__(self, reader: RowReader) -> None:
        self.reader = reader

    def build(self, rows: Parsed) -> Group:
        row, values, _row_problems = rows[0]
        problems: list[Problem] = []
        customer = None
        if not _row_problems:
            customer = _customer(self.reader, values, row.line, problems, name_field="name")
            if customer is None and not problems:
                column = next(
                    (self.reader.column(n) for n in ("customer_id", "email", "phone")
                     if n in self.reader.mapping),
                    "customer_id",
                )  # fmt: skip
                problems.append(
                    Problem(
                        row.line, column, _("Give at least a customer id, an email or a phone.")
                    )
                )
        return _finish(self.reader, rows, customer, problems, "customer")


class _ProductBuilder:
    def __init__(self, reader: RowReader, currency: str) -> None:
        self.reader = reader
        self.currency = currency

    def build(self, rows: Parsed) -> Group:
        reader = self.reader
        first, first_values, _first_problems = rows[0]
        problems: list[Problem] = []
        product_id = first_values.get("product_id", "")
        id_column = reader.column("product_id")
        if not product_id and not first.error:
            problems.append(Problem(first.line, id_column, _("Every row needs a product id.")))
        elif len(product_id) > 100:
            problems.append(Problem(first.line, id_column, _id_too_long()))
        header = _merge_header(reader, rows, PRODUCT_HEADER, problems)
        variants: list[VariantIn] = []
        seen: dict[str, int] = {}
        for row, values, _row_problems in rows:
            if not {"variant_id", "sku", "price", "variant_title"} & set(values):
                continue
            sku = values.get("sku", "")
            variant_id = values.get("variant_id") or sku or f"{product_id}#{len(variants) + 1}"
            if variant_id in seen:
                problems.append(
                    Problem(
                        row.line,
                        reader.column("variant_id" if "variant_id" in values else "sku"),
                        _("This variant is already on line %(line)d.") % {"line": seen[variant_id]},
                    )
                )
                continue
            seen[variant_id] = row.line
            variants.append(
                VariantIn(
                    external_id=variant_id[:100],
                    sku=sku,
                    title=values.get("variant_title", ""),
                    price_minor=_minor(
                        reader, values.get("price"), self.currency, "price", row.line, problems
                    ),
                )
            )
        record = None
        if not problems and product_id:
            record = ProductIn(
                external_id=product_id,
                title=header.get("title", ""),
                url=header.get("url", ""),
                image_url=header.get("image_url", ""),
                status=header.get("status", "active"),
                updated_at=header.get("updated_at"),
                variants=tuple(variants),
            )
        return _finish(reader, rows, record, problems, "product")


class _OrderBuilder:
    def __init__(self, reader: RowReader, currency: str) -> None:
        self.reader = reader
        self.store_currency = currency

    def _missing(self, name: str, line: int, problems: list[Problem]) -> None:
        label = next(t.label for t in targets(ORDERS) if t.name == name)
        problems.append(
            Problem(
                line,
                self.reader.column(name),
                _("Missing: no row of this order gives “%(field)s”.") % {"field": label},
            )
        )

    def build(self, rows: Parsed) -> Group:
        reader = self.reader
        first, first_values, _first_problems = rows[0]
        problems: list[Problem] = []
        order_id = first_values.get("order_id", "")
        if first.error:
            return _finish(reader, rows, None, problems, "order")
        if not order_id:
            problems.append(
                Problem(first.line, reader.column("order_id"), _("Every row needs an order id."))
            )
            return _finish(reader, rows, None, problems, "order")
        if len(order_id) > 100:
            problems.append(Problem(first.line, reader.column("order_id"), _id_too_long()))
        header = _merge_header(reader, rows, ORDER_HEADER, problems)
        unreadable = {p.field for _row, _values, row_problems in rows for p in row_problems}
        for name in ("placed_at", "total"):
            if name not in header and reader.column(name) not in unreadable:
                self._missing(name, first.line, problems)
        currency = header.get("currency") or self.store_currency
        placed_at = header.get("placed_at")
        updated_at = header.get("updated_at") or placed_at
        base, cancelled = header.get("status", ("paid", False))
        if header.get("fulfillment_status") and not cancelled:
            base = "fulfilled"
        cancelled_at = header.get("cancelled_at") or (updated_at if cancelled else None)
        if cancelled_at is not None and base == "pending" and header.get("paid_at"):
            base = "paid"

        lines, refund_rows = self._lines(rows, order_id, currency, problems)
        refunds = self._refunds(rows, refund_rows, order_id, currency, updated_at, problems)
        customer = _customer(reader, header, first.line, problems, name_field="customer_name")
        minor = {
            name: _minor(reader, header.get(name), currency, name, first.line, problems)
            for name in ("subtotal", "discount", "shipping", "tax", "total")
        }
        record = None
        if not problems and placed_at is not None and updated_at is not None:
            record = OrderIn(
                external_id=order_id,
                number=header.get("number", "")[:64],
                currency=currency,
                placed_at=placed_at,
                updated_at=updated_at,
                status=base,
                total_minor=minor["total"],
                subtotal_minor=minor["subtotal"],
                discount_minor=minor["discount"],
                shipping_minor=minor["shipping"],
                tax_minor=minor["tax"],
                discount_codes=header.get("discount_codes", ()),
                paid_at=header.get("paid_at"),
                fulfilled_at=header.get("fulfilled_at"),
                cancelled_at=cancelled_at,
                customer=customer,
                lines=tuple(lines),
                refunds=tuple(refunds),
            )
        return _finish(reader, rows, record, problems, "order")

    def _lines(
        self, rows: Parsed, order_id: str, currency: str, problems: list[Problem]
    ) -> tuple[list[LineIn], list[tuple[int, str, dict[str, Any]]]]:
        reader = self.reader
        lines: list[LineIn] = []
        seen: dict[str, int] = {}
        counts: dict[str, int] = {}
        refund_rows: list[tuple[int, str, dict[str, Any]]] = []
        for row, values, _row_problems in rows:
            for name in ("quantity", "unit_price"):
                if name not in values and not any(p.field == reader.column(name)
                                                   for p in _row_problems):  # fmt: skip
                    label = next(t.label for t in targets(ORDERS) if t.name == name)
                    problems.append(
                        Problem(
                            row.line,
                            reader.column(name),
                            _("Missing: every line needs “%(field)s”.") % {"field": label},
                        )
                    )
            line_id = values.get("line_id", "")
            if not line_id:
                # A stable id without a column for it: the line's SKU (or product, or title),
                # numbered when it repeats inside the order.
                key = (
                    values.get("sku")
                    or values.get("variant_id")
                    or values.get("product_id")
                    or values.get("title")
                    or "line"
                )[:90]
                counts[key] = counts.get(key, 0) + 1
                line_id = key if counts[key] == 1 else f"{key}#{counts[key]}"
            elif len(line_id) > 100:
                problems.append(Problem(row.line, reader.column("line_id"), _id_too_long()))
            if line_id in seen:
                problems.append(
                    Problem(
                        row.line,
                        reader.column("line_id" if "line_id" in values else "sku"),
                        _("Order %(order)s already has this line on line %(line)d.")
                        % {"order": order_id, "line": seen[line_id]},
                    )
                )
                continue
            seen[line_id] = row.line
            quantity = values.get("quantity", 0)
            lines.append(
                LineIn(
                    external_id=line_id,
                    quantity=quantity,
                    unit_price_minor=_minor(
                        reader, values.get("unit_price"), currency, "unit_price", row.line, problems
                    ),
                    discount_minor=_minor(
                        reader,
                        values.get("line_discount"),
                        currency,
                        "line_discount",
                        row.line,
                        problems,
                    ),
                    product_external_id=values.get("product_id", "")[:100],
                    variant_external_id=values.get("variant_id", "")[:100],
                    sku=values.get("sku", "")[:100],
                    title=values.get("title", "")[:300],
                )
            )
            if {"refund_id", "refund_quantity", "refund_line_amount", "refund_amount"} & set(
                values
            ):
                refund_rows.append((row.line, line_id, values))
        return lines, refund_rows

    def _refunds(
        self,
        rows: Parsed,
        refund_rows: list[tuple[int, str, dict[str, Any]]],
        order_id: str,
        currency: str,
        updated_at: dt.datetime | None,
        problems: list[Problem],
    ) -> list[RefundIn]:
        reader = self.reader
        refunds: dict[str, dict[str, Any]] = {}
        for line, line_id, values in refund_rows:
            amount = values.get("refund_amount")
            quantity = values.get("refund_quantity", 0)
            line_amount = values.get("refund_line_amount")
            if not values.get("refund_id") and not (amount or quantity or line_amount):
                continue  # zero refund columns: nothing was refunded
            refund_id = values.get("refund_id") or f"{order_id}-refund"
            refund = refunds.setdefault(
                refund_id,
                {"line": line, "amount": None, "at": None, "reason": "", "lines": {}},
            )
            if amount is not None and refund["amount"] is None:
                refund["amount"] = _minor(reader, amount, currency, "refund_amount", line, problems)
            if values.get("refunded_at") and refund["at"] is None:
                refund["at"] = values["refunded_at"]
            if values.get("refund_reason") and not refund["reason"]:
                refund["reason"] = values["refund_reason"]
            if quantity or line_amount:
                if line_amount is None:
                    unit = values.get("unit_price") or Decimal(0)
                    line_amount = unit * quantity
                refund["lines"][line_id] = RefundLineIn(
                    line_external_id=line_id,
                    quantity=quantity,
                    amount_minor=_minor(
                        reader, line_amount, currency, "refund_line_amount", line, problems
                    ),
                )
        result = []
        for refund_id, refund in refunds.items():
            refunded_at = refund["at"] or updated_at
            if refunded_at is None:
                continue  # the order itself has no time: reported already
            amount = refund["amount"]
            if amount is None:
                amount = sum(ln.amount_minor for ln in refund["lines"].values())
            result.append(
                RefundIn(
                    external_id=refund_id[:100],
                    order_external_id=order_id,
                    refunded_at=refunded_at,
                    amount_minor=amount,
                    currency=currency,
                    lines=tuple(refund["lines"].values()),
                    reason=refund["reason"][:300],
                )
            )
        return result
