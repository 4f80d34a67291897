"""Shopify's REST resources (webhook bodies and Admin API answers) as schema.py records.

Webhook bodies are the REST resource of the topic ("Webhooks delivery structure",
https://shopify.dev/docs/apps/build/webhooks/delivery-structure), so one mapping serves
deliveries and the backfill alike. Field lists follow the REST Admin API reference, version
2024-10: Customer (https://shopify.dev/docs/api/admin-rest/2024-10/resources/customer),
Product (…/resources/product), Order (…/resources/order) and Refund (…/resources/refund).
The privacy topics' bodies follow "Privacy law compliance"
(https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance).

Money fields are decimal strings in the shop's currency (`currency` on the order). Every
value is checked: anything that does not fit raises PayloadError naming the field.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from decimal import InvalidOperation
from typing import Any

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

# Financial statuses after which the order counts as paid (refunds are separate facts).
PAID_FINANCIAL_STATUSES = frozenset({"paid", "partially_refunded", "refunded"})
PRODUCT_STATUSES = {"active": "active", "draft": "draft", "archived": "archived"}
# Newer API versions add "unlisted": sold by link only, still on sale.
PRODUCT_STATUSES["unlisted"] = "active"
# Largest amount accepted, in minor units (keeps sums inside a 64-bit column).
AMOUNT_LIMIT = 10**15
SHIPPING_ADDRESS_FIELDS = (
    "name",
    "company",
    "address1",
    "address2",
    "city",
    "zip",
    "province",
    "province_code",
    "country",
    "country_code",
    "phone",
)
_CURRENCY_RE = re.compile(r"^[A-Za-z]{3}$")
_LANGUAGE_RE = re.compile(r"^[a-z]{2,3}$")


# --------------------------------------------------------------------------- field readers


def _int(value: Any, field: str) -> int:
    if isinstance(value, bool):
        raise PayloadError(field, _("Expected a whole number."))
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().removeprefix("-").isdecimal():
        number = int(value.strip())
    else:
        raise PayloadError(field, _("Expected a whole number."))
    if number < 0:
        raise PayloadError(field, _("Cannot be negative."))
    if number > AMOUNT_LIMIT:
        raise PayloadError(field, _("The number is too large."))
    return number


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _time(value: Any, field: str, *, required: bool = False) -> dt.datetime | None:
    """An ISO 8601 time with its offset ("2024-10-01T12:00:00-04:00"), as UTC."""
    if value is None or value == "":
        if required:
            raise PayloadError(field, _("The time is missing."))
        return None
    if not isinstance(value, str):
        raise PayloadError(field, _("Expected an ISO 8601 time."))
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise PayloadError(
            field, _("“%(value)s” is not an ISO 8601 time.") % {"value": value}
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise PayloadError(field, _("Give the time with a time zone."))
    try:
        return parsed.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        raise PayloadError(field, _("The time is out of range.")) from None


def _time_required(value: Any, field: str) -> dt.datetime:
    parsed = _time(value, field, required=True)
    if parsed is None:
        raise PayloadError(field, _("The time is missing."))
    return parsed


def _money(value: Any, currency: str, field: str) -> int:
    if isinstance(value, bool) or not (value is None or isinstance(value, str | int | float)):
        raise PayloadError(field, _("Expected an amount."))
    try:
        amount = to_minor(value, currency, field_name=field)
    except PayloadError:
        raise
    except (InvalidOperation, ArithmeticError, ValueError):
        # Exponents beyond the decimal context ("1e99") overflow while quantizing.
        raise PayloadError(field, _("“%(value)s” is not an amount.") % {"value": value}) from None
    if abs(amount) > AMOUNT_LIMIT:
        raise PayloadError(field, _("The amount is too large."))
    return amount


def _set_amount(value: Any, field: str) -> tuple[Any, str]:
    """The shop-currency amount and currency of a Shopify MoneyBag ("*_set" fields)."""
    bag = _obj(value, field)
    shop = _obj(bag.get("shop_money"), f"{field}.shop_money")
    return shop.get("amount"), _text(shop.get("currency_code"), f"{field}.shop_money")


def _currency(value: Any, fallback: str, field: str = "currency") -> str:
    if value is None or value == "":
        return fallback
    if not isinstance(value, str) or not _CURRENCY_RE.match(value):
        raise PayloadError(field, _("Expected a three-letter currency code."))
    return value.upper()


def _sum(amounts: Iterable[int]) -> int:
    return sum(amounts, 0)


# --------------------------------------------------------------------------- customers


def _language(locale: Any) -> tuple[str, ...]:
    """The site language of a Shopify locale ("it", "en-US", "zh-CN"), if it has one."""
    if not isinstance(locale, str):
        return ()
    code = locale.strip().lower().replace("_", "-")
    primary, _sep, region = code.partition("-")
    if primary == "zh":
        return ("zh-hant",) if region in ("tw", "hk", "mo", "hant") else ("zh-hans",)
    return (primary,) if _LANGUAGE_RE.match(primary) else ()


def _country(address: dict[str, Any] | None, field: str) -> tuple[str, str]:
    if address is None:
        return "", ""
    city = _text(address.get("city"), f"{field}.city")[:120]
    country = _text(address.get("country_code"), f"{field}.country_code").upper()
    return city, country if len(country) == 2 and country.isalpha() else ""


def _marketing(data: dict[str, Any]) -> bool | None:
    consent = data.get("email_marketing_consent")
    if isinstance(consent, dict) and isinstance(consent.get("state"), str):
        return bool(consent["state"] == "subscribed")
    return _bool(data.get("accepts_marketing"))


def customer_in(payload: Any, *, field: str = "customer") -> CustomerIn:
    """A Customer resource (customers/create, customers/update, the customers endpoint)."""
    data = _obj(payload, field)
    prefix = "" if field == "customer" else f"{field}."
    address = _maybe_obj(data.get("default_address"), f"{prefix}default_address")
    city, country = _country(address, f"{prefix}default_address")
    return CustomerIn(
        external_id=_id(data.get("id"), f"{prefix}id"),
        email=_text(data.get("email"), f"{prefix}email"),
        phone=_text(data.get("phone"), f"{prefix}phone"),
        first_name=_text(data.get("first_name"), f"{prefix}first_name"),
        last_name=_text(data.get("last_name"), f"{prefix}last_name"),
        city=city,
        country=country,
        languages=_language(data.get("locale")),
        accepts_marketing=_marketing(data),
        created_at=_time(data.get("created_at"), f"{prefix}created_at"),
        updated_at=_time(data.get("updated_at"), f"{prefix}updated_at"),
    )


def privacy_customer(payload: Any) -> CustomerIn:
    """The customer a customers/data_request or customers/redact body names."""
    data = _obj(payload, "body")
    customer = _obj(data.get("customer"), "customer")
    record = CustomerIn(
        external_id=_id(customer.get("id"), "customer.id", required=False),
        email=_text(customer.get("email"), "customer.email"),
        phone=_text(customer.get("phone"), "customer.phone"),
    )
    if record.is_empty:
        raise PayloadError("customer", _("The request names no customer id, email or phone."))
    return record


# --------------------------------------------------------------------------- products


def _image(data: dict[str, Any]) -> str:
    image = data.get("image")
    if isinstance(image, dict) and image.get("src"):
        return _text(image.get("src"), "image.src")
    for index, item in enumerate(_list(data.get("images"), "images")):
        if isinstance(item, dict) and item.get("src"):
            return _text(item.get("src"), f"images[{index}].src")
    return ""


def product_in(payload: Any, *, currency: str, shop_url: str = "") -> ProductIn:
    """A Product resource with its variants, main image and status."""
    data = _obj(payload, "product")
    status = _text(data.get("status"), "status").lower() or "active"
    if status not in PRODUCT_STATUSES:
        raise PayloadError("status", _("Unknown product status “%(status)s”.") % {"status": status})
    handle = _text(data.get("handle"), "handle")
    variants = []
    for index, item in enumerate(_list(data.get("variants"), "variants")):
        field = f"variants[{index}]"
        variant = _obj(item, field)
        variants.append(
            VariantIn(
                external_id=_id(variant.get("id"), f"{field}.id"),
                sku=_text(variant.get("sku"), f"{field}.sku"),
                title=_text(variant.get("title"), f"{field}.title"),
                price_minor=_money(variant.get("price"), currency, f"{field}.price"),
            )
        )
    return ProductIn(
        external_id=_id(data.get("id"), "id"),
        title=_text(data.get("title"), "title"),
        url=f"{shop_url.rstrip('/')}/products/{handle}" if shop_url and handle else "",
        image_url=_image(data),
        status=PRODUCT_STATUSES[status],
        updated_at=_time(data.get("updated_at"), "updated_at")
        or _time(data.get("created_at"), "created_at"),
        variants=tuple(variants),
    )


# --------------------------------------------------------------------------- refunds


def _refund_currency(data: dict[str, Any], fallback: str, field: str) -> str:
    items = _list(data.get("refund_line_items"), f"{field}.refund_line_items")
    for index, item in enumerate(items):
        line = _obj(item, f"{field}.refund_line_items[{index}]")
        if isinstance(line.get("subtotal_set"), dict):
            _amount, code = _set_amount(
                line["subtotal_set"], f"{field}.refund_line_items[{index}].subtotal_set"
            )
            return _currency(code, fallback, f"{field}.refund_line_items[{index}].subtotal_set")
    return fallback


def refund_in(
    payload: Any, *, currency: str, order_id: str = "", field: str = "refund"
) -> RefundIn:
    """A Refund resource: its lines' merchandise subtotals, and the money returned.

    The amount is what the successful refund transactions returned, in the order's
    currency; without transactions (or in another currency) it is the lines' subtotals and
    taxes plus the refunded shipping and discrepancies of the order adjustments.
    """
    data = _obj(payload, field)
    refund_id = _id(data.get("id"), f"{field}.id")
    own_order = _id(data.get("order_id"), f"{field}.order_id", required=not order_id)
    currency = _refund_currency(data, currency, field) if not order_id else currency
    lines = []
    from_lines = 0
    items = _list(data.get("refund_line_items"), f"{field}.refund_line_items")
    for index, item in enumerate(items):
        name = f"{field}.refund_line_items[{index}]"
        line = _obj(item, name)
        subtotal = _money(line.get("subtotal"), currency, f"{name}.subtotal")
        from_lines += subtotal + _money(line.get("total_tax"), currency, f"{name}.total_tax")
        lines.append(
            RefundLineIn(
                line_external_id=_id(line.get("line_item_id"), f"{name}.line_item_id"),
                quantity=_int(line.get("quantity", 0), f"{name}.quantity"),
                amount_minor=subtotal,
            )
        )
    adjustments = _list(data.get("order_adjustments"), f"{field}.order_adjustments")
    for index, item in enumerate(adjustments):
        name = f"{field}.order_adjustments[{index}]"
        adjustment = _obj(item, name)
        # Adjustments that return money are negative ("-5.00" of refunded shipping).
        from_lines -= _money(adjustment.get("amount"), currency, f"{name}.amount")
        from_lines -= _money(adjustment.get("tax_amount"), currency, f"{name}.tax_amount")
    returned, counted = 0, False
    for index, item in enumerate(_list(data.get("transactions"), f"{field}.transactions")):
        name = f"{field}.transactions[{index}]"
        transaction = _obj(item, name)
        if transaction.get("kind") != "refund" or transaction.get("status") != "success":
            continue
        code = _currency(transaction.get("currency"), currency, f"{name}.currency")
        if code != currency:
            counted = False
            break
        returned += _money(transaction.get("amount"), currency, f"{name}.amount")
        counted = True
    refunded_at = _time(data.get("processed_at"), f"{field}.processed_at") or _time_required(
        data.get("created_at"), f"{field}.created_at"
    )
    return RefundIn(
        external_id=refund_id,
        order_external_id=own_order or order_id,
        refunded_at=refunded_at,
        amount_minor=returned if counted else from_lines,
        currency=currency,
        lines=tuple(lines),
        reason=_text(data.get("note"), f"{field}.note")[:300],
    )


# --------------------------------------------------------------------------- orders


def _line(item: Any, currency: str, field: str) -> LineIn:
    data = _obj(item, field)
    allocations = _list(data.get("discount_allocations"), f"{field}.discount_allocations")
    if allocations:
        # Every discount applied to the line: its own and its share of order-level ones.
        discount = _sum(
            _money(
                _obj(entry, f"{field}.discount_allocations[{index}]").get("amount"),
                currency,
                f"{field}.discount_allocations[{index}].amount",
            )
            for index, entry in enumerate(allocations)
        )
    else:
        discount = _money(data.get("total_discount"), currency, f"{field}.total_discount")
    return LineIn(
        external_id=_id(data.get("id"), f"{field}.id"),
        quantity=_int(data.get("quantity"), f"{field}.quantity"),
        unit_price_minor=_money(data.get("price"), currency, f"{field}.price"),
        discount_minor=discount,
        product_external_id=_id(data.get("product_id"), f"{field}.product_id", required=False),
        variant_external_id=_id(data.get("variant_id"), f"{field}.variant_id", required=False),
        sku=_text(data.get("sku"), f"{field}.sku"),
        title=_text(data.get("name"), f"{field}.name")
        or _text(data.get("title"), f"{field}.title"),
    )


def _order_customer(data: dict[str, Any]) -> CustomerIn | None:
    customer = _maybe_obj(data.get("customer"), "customer") or {}
    billing = _maybe_obj(data.get("billing_address"), "billing_address") or {}
    shipping = _maybe_obj(data.get("shipping_address"), "shipping_address")
    address = _maybe_obj(customer.get("default_address"), "customer.default_address")
    city, country = _country(address or shipping or billing or None, "customer.default_address")
    record = CustomerIn(
        external_id=_id(customer.get("id"), "customer.id", required=False),
        email=_text(data.get("email"), "email")
        or _text(data.get("contact_email"), "contact_email")
        or _text(customer.get("email"), "customer.email"),
        phone=_text(data.get("phone"), "phone") or _text(customer.get("phone"), "customer.phone"),
        first_name=_text(customer.get("first_name"), "customer.first_name")
        or _text(billing.get("first_name"), "billing_address.first_name"),
        last_name=_text(customer.get("last_name"), "customer.last_name")
        or _text(billing.get("last_name"), "billing_address.last_name"),
        city=city,
        country=country,
        languages=_language(data.get("customer_locale")),
        accepts_marketing=_bool(data.get("buyer_accepts_marketing")),
        created_at=_time(customer.get("created_at"), "customer.created_at"),
        updated_at=_time(customer.get("updated_at"), "customer.updated_at"),
    )
    return None if record.is_empty else record


def _address(value: Any) -> dict[str, Any]:
    data = _maybe_obj(value, "shipping_address")
    if data is None:
        return {}
    return {
        name: _text(data.get(name), f"shipping_address.{name}")[:200]
        for name in SHIPPING_ADDRESS_FIELDS
        if data.get(name) not in (None, "")
    }


def _paid_at(data: dict[str, Any], processed_at: dt.datetime) -> dt.datetime:
    """When the money came in: the first successful sale or capture when the transactions
    are given, else the order's processing time (checkout captures at once)."""
    times = []
    for index, item in enumerate(_list(data.get("transactions"), "transactions")):
        name = f"transactions[{index}]"
        transaction = _obj(item, name)
        succeeded = transaction.get("status") == "success"
        if succeeded and transaction.get("kind") in ("sale", "capture"):
            when = _time(transaction.get("processed_at"), f"{name}.processed_at") or _time(
                transaction.get("created_at"), f"{name}.created_at"
            )
            if when is not None:
                times.append(when)
    return min(times) if times else processed_at


def _fulfilled_at(data: dict[str, Any], fallback: dt.datetime) -> dt.datetime:
    """When the last successful fulfilment was created (the order became fulfilled)."""
    times = []
    for index, item in enumerate(_list(data.get("fulfillments"), "fulfillments")):
        name = f"fulfillments[{index}]"
        fulfillment = _obj(item, name)
        if fulfillment.get("status", "success") not in ("success", None):
            continue
        when = _time(fulfillment.get("created_at"), f"{name}.created_at")
        if when is not None:
            times.append(when)
    return max(times) if times else fallback


def _shipping(data: dict[str, Any], currency: str) -> int:
    if isinstance(data.get("total_shipping_price_set"), dict):
        amount, _code = _set_amount(data["total_shipping_price_set"], "total_shipping_price_set")
        return _money(amount, currency, "total_shipping_price_set")
    return _sum(
        _money(
            _obj(line, f"shipping_lines[{index}]").get("price"),
            currency,
            f"shipping_lines[{index}].price",
        )
        for index, line in enumerate(_list(data.get("shipping_lines"), "shipping_lines"))
    )


def order_in(payload: Any, *, fallback_currency: str) -> OrderIn:
    """An Order resource with its lines and refunds.

    Base status: fulfilled when fulfillment_status is "fulfilled", paid when the financial
    status says the money came in (paid, partially or wholly refunded), else pending.
    Subtotal is the lines before discounts (total_line_items_price); discount_minor is
    total_discounts, so subtotal - discount + shipping + tax is the total.
    """
    data = _obj(payload, "order")
    order_id = _id(data.get("id"), "id")
    currency = _currency(data.get("currency"), fallback_currency)
    created = _time_required(data.get("created_at"), "created_at")
    placed = _time(data.get("processed_at"), "processed_at") or created
    updated = _time(data.get("updated_at"), "updated_at") or created
    financial = _text(data.get("financial_status"), "financial_status").lower()
    fulfillment = _text(data.get("fulfillment_status"), "fulfillment_status").lower()
    paid = financial in PAID_FINANCIAL_STATUSES
    fulfilled = fulfillment == "fulfilled"
    status = "fulfilled" if fulfilled else "paid" if paid else "pending"
    lines = tuple(
        _line(item, currency, f"line_items[{index}]")
        for index, item in enumerate(_list(data.get("line_items"), "line_items"))
    )
    if data.get("total_line_items_price") not in (None, ""):
        subtotal = _money(data.get("total_line_items_price"), currency, "total_line_items_price")
    else:
        subtotal = _sum(line.quantity * line.unit_price_minor for line in lines)
        if abs(subtotal) > AMOUNT_LIMIT:
            raise PayloadError("line_items", _("The amount is too large."))
    codes = []
    for index, item in enumerate(_list(data.get("discount_codes"), "discount_codes")):
        code = _text(_obj(item, f"discount_codes[{index}]").get("code"), f"discount_codes[{index}]")
        if code and code not in codes:
            codes.append(code[:100])
    landing_site = _text(data.get("landing_site"), "landing_site")
    refunds = tuple(
        refund_in(item, currency=currency, order_id=order_id, field=f"refunds[{index}]")
        for index, item in enumerate(_list(data.get("refunds"), "refunds"))
    )
    return OrderIn(
        external_id=order_id,
        number=_text(data.get("name"), "name") or _text(data.get("order_number"), "order_number"),
        currency=currency,
        placed_at=placed,
        updated_at=updated,
        status=status,
        customer=_order_customer(data),
        subtotal_minor=subtotal,
        discount_minor=_money(data.get("total_discounts"), currency, "total_discounts"),
        shipping_minor=_shipping(data, currency),
        tax_minor=_money(data.get("total_tax"), currency, "total_tax"),
        total_minor=_money(data.get("total_price"), currency, "total_price"),
        discount_codes=tuple(codes),
        paid_at=_paid_at(data, placed) if paid else None,
        fulfilled_at=_fulfilled_at(data, updated) if fulfilled else None,
        cancelled_at=_time(data.get("cancelled_at"), "cancelled_at"),
        landing_site=landing_site[:500],
        referring_code=_referring_code(landing_site),
        shipping_address=_address(data.get("shipping_address")),
        lines=lines,
        refunds=refunds,
    )
