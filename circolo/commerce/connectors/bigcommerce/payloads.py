"""BigCommerce API resources onto schema.py records.

Webhook bodies carry only ids, so everything here maps what the API returns: the Orders V2
order with its products, coupons and shipping addresses, its V3 refunds
(``payment_actions/refunds``), V3 customers and V3 catalog products with their variants and
images. Field names follow the API reference: https://developer.bigcommerce.com/docs/rest-management/orders
(Orders V2, and Orders V3 > payment actions > refunds), /docs/rest-management/customers and
/docs/rest-catalog/products. V2 times are RFC 2822 strings, V3 times ISO 8601; amounts are
decimal strings or numbers in the order's currency.

Anything that does not validate raises PayloadError naming the field, never KeyError or
TypeError.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from collections.abc import Mapping
from typing import Any

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

# Order status ids are fixed by BigCommerce (stores only relabel them): GET /v2/order_statuses.
INCOMPLETE = 0
STATUS_PENDING = frozenset({1, 7, 12})  # Pending, Awaiting Payment, Manual Verification
STATUS_PAID = frozenset(
    {3, 8, 9, 11, 13}
)  # Partially Shipped, Awaiting Pickup/Shipment/Fulfillment, Disputed
STATUS_FULFILLED = frozenset({2, 10})  # Shipped, Completed
STATUS_REFUNDED = frozenset({4, 14})  # Refunded, Partially Refunded
CANCELLED = 5
DECLINED = 6
KNOWN_STATUSES = (STATUS_PENDING | STATUS_PAID | STATUS_FULFILLED | STATUS_REFUNDED) | {
    INCOMPLETE,
    CANCELLED,
    DECLINED,
}
# payment_status values of an order whose money was taken (a cancelled order may have been).
PAID_PAYMENT_STATUSES = frozenset({"captured", "paid", "partially refunded", "refunded"})
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")
SHIPPING_ADDRESS_FIELDS = (
    "first_name",
    "last_name",
    "company",
    "street_1",
    "street_2",
    "city",
    "state",
    "zip",
    "country",
    "country_iso2",
)


# --------------------------------------------------------------------------- field access


def obj(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PayloadError(field, "expected an object")
    return value


def rows(value: Any, field: str) -> list[Mapping[str, Any]]:
    """A list of objects; None (an empty V2 answer) is an empty list."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise PayloadError(field, "expected a list")
    return [obj(item, f"{field}[{index}]") for index, item in enumerate(value)]


def ident(value: Any, field: str, *, optional: bool = False) -> str:
    """A BigCommerce numeric id as text; 0 or missing is "" where `optional`."""
    if isinstance(value, bool):
        raise PayloadError(field, "expected an id")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    elif value is None and optional:
        return ""
    else:
        raise PayloadError(field, "expected a numeric id")
    if number < 0:
        raise PayloadError(field, "expected a positive id")
    if number == 0:
        if optional:
            return ""
        raise PayloadError(field, "the id is 0")
    return str(number)


def count(value: Any, field: str) -> int:
    if isinstance(value, bool):
        raise PayloadError(field, "expected a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    if value is None:
        return 0
    raise PayloadError(field, "expected a whole number")


def text(value: Any, field: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PayloadError(field, "expected text")
    return str(value).strip()


def flag(value: Any, field: str) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    raise PayloadError(field, "expected true or false")


def money(value: Any, currency: str, field: str) -> int:
    if isinstance(value, bool | Mapping | list):
        raise PayloadError(field, "expected an amount")
    return to_minor(value, currency, field_name=field)


def rfc2822(value: Any, field: str) -> dt.datetime | None:
    """A V2 time such as "Tue, 20 Nov 2012 00:00:00 +0000"; "" or None is no time."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PayloadError(field, "expected an RFC 2822 time")
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        raise PayloadError(field, f"“{value}” is not an RFC 2822 time") from None
    if parsed.tzinfo is None:
        raise PayloadError(field, "the time has no time zone")
    return parsed.astimezone(dt.UTC)


def iso8601(value: Any, field: str) -> dt.datetime | None:
    """A V3 time such as "2018-09-05T20:42:07+00:00"; "" or None is no time."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PayloadError(field, "expected an ISO 8601 time")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise PayloadError(field, f"“{value}” is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise PayloadError(field, "the time has no time zone")
    return parsed.astimezone(dt.UTC)


def required(value: dt.datetime | None, field: str) -> dt.datetime:
    if value is None:
        raise PayloadError(field, "the time is missing")
    return value


def currency_code(value: Any, field: str) -> str:
    code = text(value, field).upper()
    if len(code) != 3 or not code.isalpha():
        raise PayloadError(field, f"“{code}” is not a currency code")
    return code


# --------------------------------------------------------------------------- customers


def customer_record(row: Any, field: str = "customer") -> CustomerIn:
    """A V3 customer (GET /v3/customers, include=addresses)."""
    data = obj(row, field)
    addresses = rows(data.get("addresses"), f"{field}.addresses")
    first = addresses[0] if addresses else {}
    return CustomerIn(
        external_id=ident(data.get("id"), f"{field}.id"),
        email=text(data.get("email"), f"{field}.email"),
        phone=text(data.get("phone"), f"{field}.phone"),
        first_name=text(data.get("first_name"), f"{field}.first_name"),
        last_name=text(data.get("last_name"), f"{field}.last_name"),
        city=text(first.get("city"), f"{field}.addresses[0].city"),
        country=text(first.get("country_code"), f"{field}.addresses[0].country_code").upper(),
        created_at=iso8601(data.get("date_created"), f"{field}.date_created"),
        updated_at=iso8601(data.get("date_modified"), f"{field}.date_modified"),
    )


# --------------------------------------------------------------------------- products


def product_record(row: Any, *, currency: str, storefront_url: str = "") -> ProductIn:
    """A V3 catalog product (include=variants,images). Hidden products are drafts, products
    whose availability is "disabled" are archived."""
    data = obj(row, "product")
    product_id = ident(data.get("id"), "product.id")
    name = text(data.get("name"), "product.name")
    if not name:
        raise PayloadError("product.name", "the product has no name")
    visible = flag(data.get("is_visible"), "product.is_visible")
    availability = text(data.get("availability"), "product.availability")
    status = "active"
    if visible is False:
        status = "draft"
    elif availability == "disabled":
        status = "archived"
    path = text(
        obj(data.get("custom_url") or {}, "product.custom_url").get("url"), "product.custom_url.url"
    )
    url = f"{storefront_url.rstrip('/')}/{path.lstrip('/')}" if storefront_url and path else ""
    base_price = data.get("price")
    variants = []
    for index, item in enumerate(rows(data.get("variants"), "product.variants")):
        name_field = f"product.variants[{index}]"
        labels = [
            text(option.get("label"), f"{name_field}.option_values.label")
            for option in rows(item.get("option_values"), f"{name_field}.option_values")
        ]
        price = item.get("price")
        if price is None:
            price = item.get("calculated_price", base_price)
        variants.append(
            VariantIn(
                external_id=ident(item.get("id"), f"{name_field}.id"),
                sku=text(item.get("sku"), f"{name_field}.sku"),
                title=" / ".join(label for label in labels if label) or name,
                price_minor=money(price, currency, f"{name_field}.price"),
            )
        )
    return ProductIn(
        external_id=product_id,
        title=name,
        url=url,
        image_url=_product_image(data),
        status=status,
        updated_at=iso8601(data.get("date_modified"), "product.date_modified"),
        variants=tuple(variants),
    )


def _product_image(data: Mapping[str, Any]) -> str:
    images = rows(data.get("images"), "product.images")
    if not images:
        return ""
    chosen = next((image for image in images if image.get("is_thumbnail") is True), images[0])
    return text(chosen.get("url_standard"), "product.images.url_standard")


# --------------------------------------------------------------------------- orders


def order_status(
    order: Mapping[str, Any], *, placed: dt.datetime, modified: dt.datetime
) -> tuple[str, dt.datetime | None, dt.datetime | None, dt.datetime | None]:
    """Base status, paid, fulfilled and cancelled times of a V2 order.

    The V2 order has no payment or cancellation time: paid_at is the creation time (checkout
    takes the payment), cancelled_at the last modification of a cancelled or declined order.
    """
    status_id = count(order.get("status_id"), "status_id")
    if status_id not in KNOWN_STATUSES:
        raise PayloadError("status_id", f"unknown order status {status_id}")
    shipped = rfc2822(order.get("date_shipped"), "date_shipped")
    payment = text(order.get("payment_status"), "payment_status").lower()
    if status_id in STATUS_FULFILLED:
        base = "fulfilled"
    elif status_id in STATUS_PAID:
        base = "paid"
    elif status_id in STATUS_REFUNDED:
        base = "fulfilled" if shipped else "paid"
    elif status_id in (CANCELLED, DECLINED):
        base = "fulfilled" if shipped else "paid" if payment in PAID_PAYMENT_STATUSES else "pending"
    else:
        base = "pending"
    paid_at = placed if base in ("paid", "fulfilled") else None
    fulfilled_at = (shipped or placed) if base == "fulfilled" else None
    cancelled_at = modified if status_id in (CANCELLED, DECLINED) else None
    return base, paid_at, fulfilled_at, cancelled_at


def is_incomplete(order: Any) -> bool:
    """An abandoned checkout BigCommerce keeps as a status-0 order: not an order here."""
    return isinstance(order, Mapping) and order.get("status_id") in (INCOMPLETE, "0")


def order_record(
    *,
    order: Any,
    products: Any,
    coupons: Any,
    shipping_addresses: Any,
    refunds: Any,
    store_currency: str,
) -> OrderIn:
    """A V2 order with its sub-resources and V3 refunds as one OrderIn."""
    data = obj(order, "order")
    order_id = ident(data.get("id"), "id")
    currency = currency_code(
        data.get("default_currency_code") or data.get("currency_code") or store_currency,
        "default_currency_code",
    )
    placed = required(rfc2822(data.get("date_created"), "date_created"), "date_created")
    modified = rfc2822(data.get("date_modified"), "date_modified") or placed
    base, paid_at, fulfilled_at, cancelled_at = order_status(data, placed=placed, modified=modified)
    inclusive = flag(data.get("is_tax_inclusive_pricing"), "is_tax_inclusive_pricing") is True
    suffix = "inc_tax" if inclusive else "ex_tax"
    items = rows(products, "products")
    lines = tuple(
        _line(item, index, currency, inclusive=inclusive) for index, item in enumerate(items)
    )
    codes: list[str] = []
    for index, coupon in enumerate(rows(coupons, "coupons")):
        code = text(coupon.get("code"), f"coupons[{index}].code")
        if code and code not in codes:
            codes.append(code)
    for item in items:
        for discount in rows(item.get("applied_discounts"), "products.applied_discounts"):
            code = text(discount.get("code"), "products.applied_discounts.code")
            if code and code not in codes:
                codes.append(code)
    addresses = rows(shipping_addresses, "shipping_addresses")
    shipping_address = (
        {
            key: text(addresses[0].get(key), f"shipping_addresses[0].{key}")
            for key in SHIPPING_ADDRESS_FIELDS
        }
        if addresses
        else {}
    )
    by_line = {line.external_id: line for line in lines}
    return OrderIn(
        external_id=order_id,
        number=order_id,
        currency=currency,
        placed_at=placed,
        updated_at=modified,
        status=base,
        total_minor=money(data.get("total_inc_tax"), currency, "total_inc_tax"),
        customer=_order_customer(data),
        subtotal_minor=money(data.get(f"subtotal_{suffix}"), currency, f"subtotal_{suffix}"),
        discount_minor=money(data.get("discount_amount"), currency, "discount_amount")
        + money(data.get("coupon_discount"), currency, "coupon_discount"),
        shipping_minor=money(
            data.get(f"shipping_cost_{suffix}"), currency, f"shipping_cost_{suffix}"
        ),
        tax_minor=money(data.get("total_tax"), currency, "total_tax"),
        discount_codes=tuple(codes),
        paid_at=paid_at,
        fulfilled_at=fulfilled_at,
        cancelled_at=cancelled_at,
        shipping_address=shipping_address,
        lines=lines,
        refunds=tuple(
            refund_record(
                refund, order_id=order_id, currency=currency, lines=by_line, field=f"refunds[{i}]"
            )
            for i, refund in enumerate(rows(refunds, "refunds"))
        ),
    )


def _line(item: Mapping[str, Any], index: int, currency: str, *, inclusive: bool) -> LineIn:
    field = f"products[{index}]"
    price_key = "price_inc_tax" if inclusive else "price_ex_tax"
    discount = sum(
        money(applied.get("amount"), currency, f"{field}.applied_discounts.amount")
        for applied in rows(item.get("applied_discounts"), f"{field}.applied_discounts")
    )
    quantity = count(item.get("quantity"), f"{field}.quantity")
    if quantity < 0:
        raise PayloadError(f"{field}.quantity", "a quantity cannot be negative")
    return LineIn(
        external_id=ident(item.get("id"), f"{field}.id"),
        quantity=quantity,
        unit_price_minor=money(item.get(price_key), currency, f"{field}.{price_key}"),
        discount_minor=discount,
        product_external_id=ident(item.get("product_id"), f"{field}.product_id", optional=True),
        variant_external_id=ident(item.get("variant_id"), f"{field}.variant_id", optional=True),
        sku=text(item.get("sku"), f"{field}.sku"),
        title=text(item.get("name"), f"{field}.name"),
    )


def _order_customer(data: Mapping[str, Any]) -> CustomerIn:
    billing = obj(data.get("billing_address") or {}, "billing_address")
    locale = text(data.get("customer_locale"), "customer_locale").lower().replace("_", "-")
    return CustomerIn(
        external_id=ident(data.get("customer_id"), "customer_id", optional=True),
        email=text(billing.get("email"), "billing_address.email"),
        phone=text(billing.get("phone"), "billing_address.phone"),
        first_name=text(billing.get("first_name"), "billing_address.first_name"),
        last_name=text(billing.get("last_name"), "billing_address.last_name"),
        city=text(billing.get("city"), "billing_address.city"),
        country=text(billing.get("country_iso2"), "billing_address.country_iso2").upper(),
        # A locale that is no language code is dropped, not fatal: it only decorates.
        languages=(locale,) if LANGUAGE_RE.match(locale) else (),
        accepts_marketing=flag(data.get("is_email_opt_in"), "is_email_opt_in"),
    )


# --------------------------------------------------------------------------- refunds


def refund_record(
    row: Any,
    *,
    order_id: str,
    currency: str,
    lines: Mapping[str, LineIn],
    field: str = "refund",
) -> RefundIn:
    """A V3 refund. Its PRODUCT items become refund lines: the requested amount when given,
    else the refunded share of the line's price after its discounts. Shipping, handling,
    wrapping and order-level items count in the total only."""
    data = obj(row, field)
    refund_lines: list[RefundLineIn] = []
    reasons: list[str] = []
    for index, item in enumerate(rows(data.get("items"), f"{field}.items")):
        name = f"{field}.items[{index}]"
        reason = text(item.get("reason"), f"{name}.reason")
        if reason and reason not in reasons:
            reasons.append(reason)
        if text(item.get("item_type"), f"{name}.item_type").upper() != "PRODUCT":
            continue
        line_id = ident(item.get("item_id"), f"{name}.item_id")
        quantity = count(item.get("quantity"), f"{name}.quantity")
        requested = item.get("requested_amount")
        if requested is not None:
            amount = money(requested, currency, f"{name}.requested_amount")
        else:
            amount = _line_share(lines.get(line_id), quantity)
        refund_lines.append(
            RefundLineIn(line_external_id=line_id, quantity=quantity, amount_minor=amount)
        )
    created = required(iso8601(data.get("created"), f"{field}.created"), f"{field}.created")
    return RefundIn(
        external_id=ident(data.get("id"), f"{field}.id"),
        order_external_id=ident(data.get("order_id", order_id), f"{field}.order_id"),
        refunded_at=created,
        amount_minor=money(data.get("total_amount"), currency, f"{field}.total_amount"),
        currency=currency,
        lines=tuple(refund_lines),
        reason=text(data.get("reason"), f"{field}.reason") or "; ".join(reasons),
    )


def _line_share(line: LineIn | None, quantity: int) -> int:
    """What `quantity` units of `line` cost after the line's discounts, rounded half up."""
    if line is None or line.quantity <= 0 or quantity <= 0:
        return 0
    gross = line.quantity * line.unit_price_minor - line.discount_minor
    return (gross * quantity * 2 + line.quantity) // (2 * line.quantity)
