"""Saleor objects, in the shape documents.py selects, as schema.py records.

The same readers serve webhook bodies ({"order": {...}}, {"user": {...}}, {"product": {...}})
and API pages (edges[].node). Choices where Saleor offers several figures:

- Amounts are Money objects ({"amount": 12.5, "currency": "EUR"}); line prices, the subtotal
  and shipping are taken before tax (`net`), the order total with tax (`gross`), the tax as
  Saleor computed it. A line's discount is everything allocated to it (its own, catalogue
  promotions, its share of order vouchers): undiscountedTotalPrice - totalPrice.
- Status: FULFILLED and the returned states count as fulfilled; paid is "fully charged or
  marked paid" (chargeStatus FULL/OVERCHARGED, isPaid, or an ORDER_FULLY_PAID /
  ORDER_MARKED_AS_PAID event); CANCELED and EXPIRED set cancelled_at. Refunds are separate.
- Refunds are money that actually went back: each REFUND_SUCCESS transaction event (with the
  lines of the granted refund it settles, when there is one) and, for shops on the legacy
  payments API, each PAYMENT_REFUNDED order event.
- Saleor has no landing page or referral fields: a storefront that records them writes the
  order metadata keys `landing_site` and `referring_code` (or a `ref` parameter in the
  landing URL), and they are read from there.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from decimal import InvalidOperation
from typing import Any, NamedTuple

from django.utils.translation import gettext as _

from circolo.commerce.connectors.fields import as_list as _list
from circolo.commerce.connectors.fields import ident as _id
from circolo.commerce.connectors.fields import maybe_obj as _maybe_obj
from circolo.commerce.connectors.fields import obj as _obj
from circolo.commerce.connectors.fields import referring_code as _referring_code
from circolo.commerce.connectors.fields import text as _text
from circolo.commerce.money import to_minor
from circolo.commerce.schema import (
    CustomerIn,
    LineIn,
    OrderIn,
    PayloadError,
    ProductIn,
    RefundIn,
    RefundLineIn,
    VariantIn,
)

FULFILLED_STATUSES = frozenset({"FULFILLED", "PARTIALLY_RETURNED", "RETURNED"})
CANCELLED_STATUSES = frozenset({"CANCELED", "EXPIRED"})
PAID_CHARGE_STATUSES = frozenset({"FULL", "OVERCHARGED"})
PAID_EVENTS = frozenset({"ORDER_FULLY_PAID", "ORDER_MARKED_AS_PAID"})
CANCEL_EVENTS = frozenset({"CANCELED", "EXPIRED"})
# Fulfilments that did not (or not yet) ship anything.
UNSHIPPED_FULFILMENTS = frozenset({"CANCELED", "WAITING_FOR_APPROVAL"})
METADATA_LANDING_SITE = "landing_site"
METADATA_REFERRING_CODE = "referring_code"
# Circolo's languages a product title is read in: alias in documents.py -> language code.
TRANSLATIONS = {"translationIt": "it", "translationEs": "es", "translationZhHans": "zh-hans"}
# Largest amount accepted, in minor units (keeps sums inside a 64-bit column).
AMOUNT_LIMIT = 10**15
QUANTITY_LIMIT = 10**9
_CURRENCY_RE = re.compile(r"^[A-Za-z]{3}$")
_LANGUAGE_RE = re.compile(r"^[a-z]{2,3}$")


# --------------------------------------------------------------------------- field readers


def _quantity(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError(field, _("Expected a whole number."))
    if value < 0:
        raise PayloadError(field, _("Cannot be negative."))
    if value > QUANTITY_LIMIT:
        raise PayloadError(field, _("The number is too large."))
    return value


def _time(value: Any, field: str) -> dt.datetime | None:
    """An ISO 8601 time with its offset, as Saleor's DateTime sends it, in UTC."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PayloadError(field, _("Expected an ISO 8601 time."))
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise PayloadError(
            field, _("“%(value)s” is not an ISO 8601 time.") % {"value": value[:60]}
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise PayloadError(field, _("Give the time with a time zone."))
    try:
        return parsed.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        raise PayloadError(field, _("The time is out of range.")) from None


def _time_required(value: Any, field: str) -> dt.datetime:
    parsed = _time(value, field)
    if parsed is None:
        raise PayloadError(field, _("The time is missing."))
    return parsed


def _currency(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _CURRENCY_RE.match(value):
        raise PayloadError(field, _("Expected a three-letter currency code."))
    return value.upper()


def _amount(value: Any, currency: str, field: str) -> int:
    if isinstance(value, bool) or not (value is None or isinstance(value, str | int | float)):
        raise PayloadError(field, _("Expected an amount."))
    try:
        minor = to_minor(value, currency, field_name=field)
    except (InvalidOperation, ArithmeticError, ValueError) as error:
        if isinstance(error, PayloadError):
            raise
        # Exponents beyond the decimal context ("1e99") overflow while quantizing.
        raise PayloadError(field, _("“%(value)s” is not an amount.") % {"value": value}) from None
    if abs(minor) > AMOUNT_LIMIT:
        raise PayloadError(field, _("The amount is too large."))
    return minor


def _money(value: Any, field: str, *, currency: str, required: bool = True) -> int:
    """A Money object in `currency`: {"amount": 12.5, "currency": "EUR"} -> 1250."""
    if value is None and not required:
        return 0
    money = _obj(value, field)
    given = money.get("currency")
    if given is not None and _currency(given, f"{field}.currency") != currency:
        raise PayloadError(
            f"{field}.currency",
            _("Expected %(expected)s like the rest of the order.") % {"expected": currency},
        )
    return _amount(money.get("amount"), currency, f"{field}.amount")


def _taxed(value: Any, part: str, field: str, *, currency: str, required: bool = True) -> int:
    """One part (net, gross, tax) of a TaxedMoney object."""
    if value is None and not required:
        return 0
    taxed = _obj(value, field)
    return _money(taxed.get(part), f"{field}.{part}", currency=currency, required=required)


def _language(code: Any) -> tuple[str, ...]:
    """The site language of a LanguageCodeEnum value ("IT", "EN_US", "ZH_HANS")."""
    if not isinstance(code, str):
        return ()
    primary, _sep, rest = code.strip().lower().replace("-", "_").partition("_")
    if primary == "zh":
        return ("zh-hant",) if rest.startswith(("hant", "tw", "hk", "mo")) else ("zh-hans",)
    return (primary,) if _LANGUAGE_RE.match(primary) else ()


def _country(address: dict[str, Any] | None, field: str) -> str:
    if address is None:
        return ""
    country = _maybe_obj(address.get("country"), f"{field}.country")
    code = _text(country.get("code"), f"{field}.country.code") if country else ""
    return code.upper() if len(code) == 2 and code.isalpha() else ""


def _address(value: Any, field: str) -> dict[str, Any]:
    """A Saleor Address in the platform-neutral keys orders keep."""
    data = _maybe_obj(value, field)
    if data is None:
        return {}
    name = " ".join(
        part
        for part in (
            _text(data.get("firstName"), f"{field}.firstName"),
            _text(data.get("lastName"), f"{field}.lastName"),
        )
        if part
    )
    values = {
        "name": name,
        "company": _text(data.get("companyName"), f"{field}.companyName"),
        "address1": _text(data.get("streetAddress1"), f"{field}.streetAddress1"),
        "address2": _text(data.get("streetAddress2"), f"{field}.streetAddress2"),
        "city": _text(data.get("city"), f"{field}.city"),
        "zip": _text(data.get("postalCode"), f"{field}.postalCode"),
        "province": _text(data.get("countryArea"), f"{field}.countryArea"),
        "country_code": _country(data, field),
        "phone": _text(data.get("phone"), f"{field}.phone"),
    }
    return {key: value[:200] for key, value in values.items() if value}


def event_time(
    payload: Any, *, field: str = "issuedAt", key: str = "issuedAt"
) -> dt.datetime | None:
    """A time field of a delivery body (by default the event's issuedAt), if it has one."""
    if not isinstance(payload, dict):
        return None
    return _time(payload.get(key), field)


# --------------------------------------------------------------------------- customers


def customer_in(payload: Any, *, field: str = "user") -> CustomerIn:
    """A User (customer_created, customer_updated, the customers query)."""
    user = _obj(payload, field)
    billing = _maybe_obj(user.get("defaultBillingAddress"), f"{field}.defaultBillingAddress")
    shipping = _maybe_obj(user.get("defaultShippingAddress"), f"{field}.defaultShippingAddress")
    address = billing or shipping
    address_field = (
        f"{field}.defaultBillingAddress" if billing else f"{field}.defaultShippingAddress"
    )
    return CustomerIn(
        external_id=_id(user.get("id"), f"{field}.id"),
        email=_text(user.get("email"), f"{field}.email")[:320],
        phone=_text(address.get("phone"), f"{address_field}.phone") if address else "",
        first_name=_text(user.get("firstName"), f"{field}.firstName")[:100],
        last_name=_text(user.get("lastName"), f"{field}.lastName")[:100],
        city=_text(address.get("city"), f"{address_field}.city")[:120] if address else "",
        country=_country(address, address_field),
        languages=_language(user.get("languageCode")),
        created_at=_time(user.get("dateJoined"), f"{field}.dateJoined"),
        updated_at=_time(user.get("updatedAt"), f"{field}.updatedAt"),
    )


# --------------------------------------------------------------------------- products


def _listing_price(listings: list[Any], currency: str, field: str) -> int:
    """The variant's price in the store's currency: the first channel selling in it."""
    for index, item in enumerate(listings):
        listing = _obj(item, f"{field}[{index}]")
        channel = _maybe_obj(listing.get("channel"), f"{field}[{index}].channel") or {}
        if str(channel.get("currencyCode") or "").upper() != currency:
            continue
        price = listing.get("price")
        if price is None:
            continue
        return _money(price, f"{field}[{index}].price", currency=currency)
    return 0


def product_in(payload: Any, *, currency: str, deleted_at: dt.datetime | None = None) -> ProductIn:
    """A Product (product_created/updated/deleted, the products query). A product published in
    no channel is a draft; a deleted one is archived, as of `deleted_at` (the event's time),
    so no older update can bring it back."""
    product = _obj(payload, "product")
    external_id = _id(product.get("id"), "product.id")
    updated_at = _time(product.get("updatedAt"), "product.updatedAt")
    listings = _list(product.get("channelListings"), "product.channelListings")
    published = any(
        _obj(item, f"product.channelListings[{index}]").get("isPublished") is True
        for index, item in enumerate(listings)
    )
    status = "active" if published else "draft"
    if deleted_at is not None:
        status = "archived"
        updated_at = max(updated_at, deleted_at) if updated_at else deleted_at
    thumbnail = _maybe_obj(product.get("thumbnail"), "product.thumbnail") or {}
    image = _text(thumbnail.get("url"), "product.thumbnail.url")
    titles: dict[str, str] = {}
    for alias, language in TRANSLATIONS.items():
        translation = _maybe_obj(product.get(alias), f"product.{alias}") or {}
        name = _text(translation.get("name"), f"product.{alias}.name")
        if name:
            titles[language] = name[:300]
    variants: list[VariantIn] = []
    for index, item in enumerate(_list(product.get("variants"), "product.variants")):
        field = f"product.variants[{index}]"
        variant = _obj(item, field)
        variants.append(
            VariantIn(
                external_id=_id(variant.get("id"), f"{field}.id"),
                sku=_text(variant.get("sku"), f"{field}.sku")[:100],
                title=_text(variant.get("name"), f"{field}.name")[:300],
                price_minor=_listing_price(
                    _list(variant.get("channelListings"), f"{field}.channelListings"),
                    currency,
                    f"{field}.channelListings",
                ),
            )
        )
    return ProductIn(
        external_id=external_id,
        title=_text(product.get("name"), "product.name")[:300],
        titles=titles,
        image_url=image[:500] if image.startswith(("https://", "http://")) else "",
        status=status,
        updated_at=updated_at,
        variants=tuple(variants),
    )


# --------------------------------------------------------------------------- orders


def _line(item: Any, currency: str, field: str) -> tuple[LineIn, int]:
    """A line, and its unit price after discounts before tax (what a refunded unit is worth)."""
    line = _obj(item, field)
    quantity = _quantity(line.get("quantity"), f"{field}.quantity")
    unit = _taxed(
        line.get("undiscountedUnitPrice"),
        "net",
        f"{field}.undiscountedUnitPrice",
        currency=currency,
    )
    unit_after = _taxed(line.get("unitPrice"), "net", f"{field}.unitPrice", currency=currency)
    total = _taxed(line.get("totalPrice"), "net", f"{field}.totalPrice", currency=currency)
    undiscounted = _taxed(
        line.get("undiscountedTotalPrice"),
        "net",
        f"{field}.undiscountedTotalPrice",
        currency=currency,
        required=False,
    )
    if not undiscounted:
        undiscounted = unit * quantity
    variant = _maybe_obj(line.get("variant"), f"{field}.variant") or {}
    product = _maybe_obj(variant.get("product"), f"{field}.variant.product") or {}
    name = _text(line.get("productName"), f"{field}.productName")
    variant_name = _text(line.get("variantName"), f"{field}.variantName")
    return (
        LineIn(
            external_id=_id(line.get("id"), f"{field}.id"),
            quantity=quantity,
            unit_price_minor=unit,
            discount_minor=max(0, undiscounted - total),
            product_external_id=_id(
                product.get("id"), f"{field}.variant.product.id", required=False
            ),
            variant_external_id=_id(
                line.get("productVariantId") or variant.get("id"),
                f"{field}.productVariantId",
                required=False,
            ),
            sku=_text(line.get("productSku"), f"{field}.productSku")[:100],
            title=(f"{name} – {variant_name}" if variant_name and name else name or variant_name)[
                :300
            ],
        ),
        unit_after,
    )


def _order_customer(data: dict[str, Any]) -> CustomerIn | None:
    user = _maybe_obj(data.get("user"), "order.user") or {}
    billing = _maybe_obj(data.get("billingAddress"), "order.billingAddress") or {}
    email = _text(data.get("userEmail"), "order.userEmail") or _text(
        user.get("email"), "order.user.email"
    )
    record = CustomerIn(
        external_id=_id(user.get("id"), "order.user.id", required=False),
        email=email[:320],
        phone=_text(billing.get("phone"), "order.billingAddress.phone"),
        first_name=(
            _text(user.get("firstName"), "order.user.firstName")
            or _text(billing.get("firstName"), "order.billingAddress.firstName")
        )[:100],
        last_name=(
            _text(user.get("lastName"), "order.user.lastName")
            or _text(billing.get("lastName"), "order.billingAddress.lastName")
        )[:100],
        city=_text(billing.get("city"), "order.billingAddress.city")[:120],
        country=_country(billing or None, "order.billingAddress"),
        languages=_language(data.get("languageCodeEnum")),
    )
    return None if record.is_empty else record


def _metadata(data: dict[str, Any]) -> dict[str, str]:
    values: dict[str, str] = {}
    for index, item in enumerate(_list(data.get("metadata"), "order.metadata")):
        entry = _obj(item, f"order.metadata[{index}]")
        key = _text(entry.get("key"), f"order.metadata[{index}].key")
        values[key] = _text(entry.get("value"), f"order.metadata[{index}].value")
    return values


class _OrderEvent(NamedTuple):
    kind: str
    id: str
    date: dt.datetime | None
    amount: Any
    field: str


def _events(data: dict[str, Any]) -> list[_OrderEvent]:
    events = []
    for index, item in enumerate(_list(data.get("events"), "order.events")):
        field = f"order.events[{index}]"
        event = _obj(item, field)
        events.append(
            _OrderEvent(
                kind=_text(event.get("type"), f"{field}.type").upper(),
                id=_id(event.get("id"), f"{field}.id", required=False),
                date=_time(event.get("date"), f"{field}.date"),
                amount=event.get("amount"),
                field=field,
            )
        )
    return events


def _transaction_events(data: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for index, item in enumerate(_list(data.get("transactions"), "order.transactions")):
        transaction = _obj(item, f"order.transactions[{index}]")
        for number, event in enumerate(
            _list(transaction.get("events"), f"order.transactions[{index}].events")
        ):
            field = f"order.transactions[{index}].events[{number}]"
            found.append({**_obj(event, field), "_field": field})
    return found


def _earliest(times: Iterable[dt.datetime | None]) -> dt.datetime | None:
    known = [when for when in times if when is not None]
    return min(known) if known else None


def _latest(times: Iterable[dt.datetime | None]) -> dt.datetime | None:
    known = [when for when in times if when is not None]
    return max(known) if known else None


def _refunds(
    data: dict[str, Any],
    *,
    order_id: str,
    currency: str,
    unit_after: dict[str, int],
    events: list[_OrderEvent],
    transaction_events: list[dict[str, Any]],
) -> tuple[RefundIn, ...]:
    granted_lines: dict[str, tuple[RefundLineIn, ...]] = {}
    for index, item in enumerate(_list(data.get("grantedRefunds"), "order.grantedRefunds")):
        field = f"order.grantedRefunds[{index}]"
        granted = _obj(item, field)
        lines = []
        for number, entry in enumerate(_list(granted.get("lines"), f"{field}.lines")):
            line_field = f"{field}.lines[{number}]"
            line = _obj(entry, line_field)
            order_line = _obj(line.get("orderLine"), f"{line_field}.orderLine")
            line_id = _id(order_line.get("id"), f"{line_field}.orderLine.id")
            quantity = _quantity(line.get("quantity"), f"{line_field}.quantity")
            lines.append(
                RefundLineIn(
                    line_external_id=line_id,
                    quantity=quantity,
                    amount_minor=quantity * unit_after.get(line_id, 0),
                )
            )
        for number, entry in enumerate(
            _list(granted.get("transactionEvents"), f"{field}.transactionEvents")
        ):
            event = _obj(entry, f"{field}.transactionEvents[{number}]")
            event_id = _id(event.get("id"), f"{field}.transactionEvents[{number}].id")
            granted_lines[event_id] = tuple(lines)
    refunds = []
    for event in transaction_events:
        field = event["_field"]
        if _text(event.get("type"), f"{field}.type").upper() != "REFUND_SUCCESS":
            continue
        event_id = _id(event.get("id"), f"{field}.id")
        amount = _obj(event.get("amount"), f"{field}.amount")
        refund_currency = _currency(amount.get("currency") or currency, f"{field}.amount.currency")
        refunds.append(
            RefundIn(
                external_id=event_id,
                order_external_id=order_id,
                refunded_at=_time_required(event.get("createdAt"), f"{field}.createdAt"),
                amount_minor=_amount(
                    amount.get("amount"), refund_currency, f"{field}.amount.amount"
                ),
                currency=refund_currency,
                lines=granted_lines.get(event_id, ()),
            )
        )
    for order_event in events:
        if order_event.kind != "PAYMENT_REFUNDED":
            continue
        field = order_event.field
        if order_event.date is None:
            raise PayloadError(f"{field}.date", _("The time is missing."))
        refunds.append(
            RefundIn(
                external_id=_id(order_event.id, f"{field}.id"),
                order_external_id=order_id,
                refunded_at=order_event.date,
                amount_minor=_amount(order_event.amount, currency, f"{field}.amount"),
                currency=currency,
            )
        )
    return tuple(refunds)


def order_in(payload: Any) -> OrderIn:
    """An Order (every order_* event, the orders query) with its lines and refunds."""
    data = _obj(payload, "order")
    order_id = _id(data.get("id"), "order.id")
    total = _obj(data.get("total"), "order.total")
    gross = _obj(total.get("gross"), "order.total.gross")
    currency = _currency(gross.get("currency"), "order.total.gross.currency")
    total_minor = _money(gross, "order.total.gross", currency=currency)
    discount = 0
    if total.get("net") is not None and data.get("undiscountedTotal") is not None:
        total_net = _taxed(total, "net", "order.total", currency=currency)
        undiscounted_net = _taxed(
            data.get("undiscountedTotal"), "net", "order.undiscountedTotal", currency=currency
        )
        discount = max(0, undiscounted_net - total_net)
    placed_at = _time_required(data.get("created"), "order.created")
    updated_at = _time_required(data.get("updatedAt"), "order.updatedAt")
    status = _text(data.get("status"), "order.status").upper()
    events = _events(data)
    transaction_events = _transaction_events(data)

    lines: list[LineIn] = []
    unit_after: dict[str, int] = {}
    for index, item in enumerate(_list(data.get("lines"), "order.lines")):
        line, unit = _line(item, currency, f"order.lines[{index}]")
        lines.append(line)
        unit_after[line.external_id] = unit

    paid = (
        data.get("isPaid") is True
        or _text(data.get("chargeStatus"), "order.chargeStatus").upper() in PAID_CHARGE_STATUSES
        or any(event.kind in PAID_EVENTS for event in events)
    )
    paid_at = None
    if paid:
        paid_at = (
            _earliest(event.date for event in events if event.kind in PAID_EVENTS)
            or _latest(
                _time(event.get("createdAt"), f"{event['_field']}.createdAt")
                for event in transaction_events
                if str(event.get("type") or "").upper() == "CHARGE_SUCCESS"
            )
            or placed_at
        )
    fulfilled_at = None
    if status in FULFILLED_STATUSES:
        shipped = []
        for index, item in enumerate(_list(data.get("fulfillments"), "order.fulfillments")):
            field = f"order.fulfillments[{index}]"
            fulfilment = _obj(item, field)
            if _text(fulfilment.get("status"), f"{field}.status").upper() in UNSHIPPED_FULFILMENTS:
                continue
            shipped.append(_time(fulfilment.get("created"), f"{field}.created"))
        fulfilled_at = (
            _latest(shipped)
            or _latest(
                event.date for event in events if event.kind == "FULFILLMENT_FULFILLED_ITEMS"
            )
            or updated_at
        )
    cancelled_at = None
    if status in CANCELLED_STATUSES:
        cancelled_at = (
            _earliest(event.date for event in events if event.kind in CANCEL_EVENTS) or updated_at
        )

    codes = [_text(data.get("voucherCode"), "order.voucherCode")]
    for index, item in enumerate(_list(data.get("lines"), "order.lines")):
        codes.append(_text(item.get("voucherCode"), f"order.lines[{index}].voucherCode"))
    metadata = _metadata(data)
    landing_site = metadata.get(METADATA_LANDING_SITE, "")[:500]
    referring_code = metadata.get(METADATA_REFERRING_CODE, "")[:100] or _referring_code(
        landing_site
    )
    return OrderIn(
        external_id=order_id,
        number=_text(data.get("number"), "order.number")[:64],
        currency=currency,
        placed_at=placed_at,
        updated_at=updated_at,
        status="fulfilled" if fulfilled_at else ("paid" if paid else "pending"),
        total_minor=total_minor,
        customer=_order_customer(data),
        subtotal_minor=_taxed(
            data.get("subtotal"), "net", "order.subtotal", currency=currency, required=False
        ),
        discount_minor=discount,
        shipping_minor=_taxed(
            data.get("shippingPrice"),
            "net",
            "order.shippingPrice",
            currency=currency,
            required=False,
        ),
        tax_minor=_money(total.get("tax"), "order.total.tax", currency=currency, required=False),
        discount_codes=tuple(dict.fromkeys(code[:100] for code in codes if code)),
        paid_at=paid_at,
        fulfilled_at=fulfilled_at,
        cancelled_at=cancelled_at,
        landing_site=landing_site,
        referring_code=referring_code,
        shipping_address=_address(data.get("shippingAddress"), "order.shippingAddress"),
        lines=tuple(lines),
        refunds=_refunds(
            data,
            order_id=order_id,
            currency=currency,
            unit_after=unit_after,
            events=events,
            transaction_events=transaction_events,
        ),
    )
