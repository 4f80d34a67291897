"""WooCommerce's REST API resources (webhook bodies and API answers) as schema.py records.

A webhook body is the resource exactly as GET /wp-json/wc/v3/<resource>s/<id> returns it
("Webhooks" > Delivery/payload, https://developer.woocommerce.com/docs/apis/rest-api/v3/webhooks/),
so one mapping serves deliveries and the backfill alike. Field lists follow the REST API v3
reference (https://woocommerce.github.io/woocommerce-rest-api-docs/#customers, #products,
#product-variations, #orders and #refunds).

Times: every resource carries each date twice, in the site's time zone without an offset
("date_modified") and as GMT ("date_modified_gmt"); the *_gmt fields are read, as UTC. Money:
decimal strings in the order's currency (line "price" is a float and is not used). Every value
is checked: anything that does not fit raises PayloadError naming the field.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import InvalidOperation
from typing import Any

from django.utils.translation import gettext as _

from circolo.commerce.connectors.fields import ID_MAX_LENGTH, ident
from circolo.commerce.connectors.fields import as_list as _list
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

# Order statuses and the base status they mean (refunds and cancellation are separate facts).
# "refunded", "cancelled", "trash" and statuses added by plugins say nothing about payment or
# shipping: their base status comes from date_paid / date_completed.
PENDING_STATUSES = frozenset({"pending", "on-hold", "failed", "checkout-draft", "draft"})
PAID_STATUSES = frozenset({"processing"})
FULFILLED_STATUSES = frozenset({"completed"})
CANCELLED_STATUS = "cancelled"
# Product post statuses: published is on sale; drafts, pending review and scheduled are not
# yet; private and trashed ones are withdrawn. Statuses from plugins count as drafts.
PRODUCT_STATUSES = {
    "publish": "active",
    "draft": "draft",
    "pending": "draft",
    "future": "draft",
    "auto-draft": "draft",
    "private": "archived",
    "trash": "archived",
}
VARIABLE_TYPES = frozenset({"variable", "variable-subscription"})
VARIATION_TYPES = frozenset({"variation", "subscription_variation"})
# The line item meta WooCommerce puts on each refunded line: the order line it refunds.
REFUNDED_ITEM_META = "_refunded_item_id"
# Order attribution (WooCommerce 8.5+) stores the landing page in this order meta.
LANDING_PAGE_META = "_wc_order_attribution_session_entry"
SHIPPING_ADDRESS_FIELDS = (
    "first_name",
    "last_name",
    "company",
    "address_1",
    "address_2",
    "city",
    "state",
    "postcode",
    "country",
    "phone",
)
# Largest amount accepted, in minor units (keeps sums inside a 64-bit column).
AMOUNT_LIMIT = 10**15
_CURRENCY_RE = re.compile(r"^[A-Za-z]{3}$")


# --------------------------------------------------------------------------- field readers


def _id(value: Any, field: str, *, required: bool = True) -> str:
    """WooCommerce ids are positive JSON integers; 0 means "none" (a guest, no variation)."""
    return ident(value, field, required=required, zero_is_none=True)


def _maybe_obj(value: Any, field: str) -> dict[str, Any]:
    """An object, or {} for a missing one (WooCommerce sends [] for an empty PHP array)."""
    if value is None or value == []:
        return {}
    return _obj(value, field)


def _int(value: Any, field: str, *, negative: bool = False) -> int:
    if isinstance(value, bool):
        raise PayloadError(field, _("Expected a whole number."))
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer() and abs(value) <= AMOUNT_LIMIT:
        number = int(value)
    elif isinstance(value, str) and value.strip().removeprefix("-").isdecimal():
        number = int(value.strip())
    else:
        raise PayloadError(field, _("Expected a whole number."))
    if number < 0 and not negative:
        raise PayloadError(field, _("Cannot be negative."))
    if abs(number) > AMOUNT_LIMIT:
        raise PayloadError(field, _("The number is too large."))
    return number


def _parse_time(value: Any, field: str) -> dt.datetime:
    if not isinstance(value, str):
        raise PayloadError(field, _("Expected an ISO 8601 time."))
    try:
        return dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise PayloadError(
            field, _("“%(value)s” is not an ISO 8601 time.") % {"value": value}
        ) from None


def _utc(moment: dt.datetime, field: str) -> dt.datetime:
    try:
        return moment.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        raise PayloadError(field, _("The time is out of range.")) from None


def _gmt(
    data: dict[str, Any], name: str, prefix: str = "", *, required: bool = False
) -> dt.datetime | None:
    """The time `name` as UTC: from `name`_gmt (GMT without an offset), else from `name` when
    that carries an offset. A site-time value without one cannot be placed: PayloadError."""
    gmt_field = f"{prefix}{name}_gmt"
    value = data.get(f"{name}_gmt")
    if value not in (None, ""):
        parsed = _parse_time(value, gmt_field)
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return _utc(parsed, gmt_field)
    local = data.get(name)
    if local not in (None, ""):
        parsed = _parse_time(local, f"{prefix}{name}")
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            raise PayloadError(gmt_field, _("The GMT time is missing."))
        return _utc(parsed, f"{prefix}{name}")
    if required:
        raise PayloadError(gmt_field, _("The time is missing."))
    return None


def _gmt_required(data: dict[str, Any], name: str, prefix: str = "") -> dt.datetime:
    moment = _gmt(data, name, prefix, required=True)
    if moment is None:
        raise PayloadError(f"{prefix}{name}_gmt", _("The time is missing."))
    return moment


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


def _currency(value: Any, fallback: str, field: str = "currency") -> str:
    if value is None or value == "":
        return fallback
    if not isinstance(value, str) or not _CURRENCY_RE.match(value):
        raise PayloadError(field, _("Expected a three-letter currency code."))
    return value.upper()


def _sum(amounts: Iterable[int], field: str) -> int:
    total = sum(amounts, 0)
    if abs(total) > AMOUNT_LIMIT:
        raise PayloadError(field, _("The amount is too large."))
    return total


def _country(value: Any, field: str) -> str:
    country = _text(value, field).upper()
    return country if len(country) == 2 and country.isalpha() else ""


def _meta(data: dict[str, Any], key: str, field: str) -> str:
    """The text value of the first meta_data entry named `key`, or ""."""
    for index, item in enumerate(_list(data.get("meta_data"), f"{field}meta_data")):
        entry = _obj(item, f"{field}meta_data[{index}]")
        if entry.get("key") == key:
            value = entry.get("value")
            if isinstance(value, str):
                return value.strip()
            if isinstance(value, int) and not isinstance(value, bool):
                return str(value)
            return ""
    return ""


def resource_id(payload: Any, field: str) -> str:
    """The id of a resource body (an order, a product, a customer)."""
    return _id(_obj(payload, field).get("id"), "id")


def order_currency(payload: Any, *, fallback: str) -> str:
    return _currency(_obj(payload, "order").get("currency"), fallback)


# --------------------------------------------------------------------------- customers


def customer_in(payload: Any) -> CustomerIn:
    """A Customer resource (customer.created / customer.updated, the customers endpoint).

    The account's own names and email first; the billing address fills what is missing and
    gives the phone, city and country.
    """
    data = _obj(payload, "customer")
    billing = _maybe_obj(data.get("billing"), "billing")
    shipping = _maybe_obj(data.get("shipping"), "shipping")
    return CustomerIn(
        external_id=_id(data.get("id"), "id"),
        email=_text(data.get("email"), "email") or _text(billing.get("email"), "billing.email"),
        phone=_text(billing.get("phone"), "billing.phone")
        or _text(shipping.get("phone"), "shipping.phone"),
        first_name=_text(data.get("first_name"), "first_name")
        or _text(billing.get("first_name"), "billing.first_name"),
        last_name=_text(data.get("last_name"), "last_name")
        or _text(billing.get("last_name"), "billing.last_name"),
        city=(
            _text(billing.get("city"), "billing.city")
            or _text(shipping.get("city"), "shipping.city")
        )[:120],
        country=_country(billing.get("country"), "billing.country")
        or _country(shipping.get("country"), "shipping.country"),
        created_at=_gmt(data, "date_created"),
        updated_at=_gmt(data, "date_modified") or _gmt(data, "date_created"),
    )


# --------------------------------------------------------------------------- products


def product_type(payload: Any) -> str:
    """The product's type ("simple", "variable", "variation", ...), lower case."""
    data = _obj(payload, "product")
    return _text(data.get("type"), "type").lower() or "simple"


def is_variation(payload: Any) -> bool:
    """A product.created/updated delivery for a variation (its own save hooks fire the topic):
    the body is the variation, read through the products endpoint, with its parent_id."""
    return product_type(payload) in VARIATION_TYPES


def variation_parent(payload: Any) -> str:
    return _id(_obj(payload, "product").get("parent_id"), "parent_id")


def _image(data: dict[str, Any], field: str) -> str:
    image = data.get("image")
    if isinstance(image, dict) and image.get("src"):
        return _text(image.get("src"), f"{field}image.src")
    for index, item in enumerate(_list(data.get("images"), f"{field}images")):
        if isinstance(item, dict) and item.get("src"):
            return _text(item.get("src"), f"{field}images[{index}].src")
    return ""


def variation_in(payload: Any, *, currency: str, field: str = "variation") -> VariantIn:
    """A product variation (GET /products/<id>/variations): its id, SKU, price and a title
    made of its attribute values ("Black / M") when it has no name of its own."""
    data = _obj(payload, field)
    title = _text(data.get("name"), f"{field}.name")
    if not title:
        options = []
        for index, item in enumerate(_list(data.get("attributes"), f"{field}.attributes")):
            attribute = _obj(item, f"{field}.attributes[{index}]")
            option = _text(attribute.get("option"), f"{field}.attributes[{index}].option")
            if option:
                options.append(option)
        title = " / ".join(options)
    return VariantIn(
        external_id=_id(data.get("id"), f"{field}.id"),
        sku=_text(data.get("sku"), f"{field}.sku")[:100],
        title=title[:300],
        price_minor=_money(data.get("price"), currency, f"{field}.price"),
    )


def product_in(payload: Any, *, currency: str, variations: Sequence[Any] = ()) -> ProductIn:
    """A Product resource. A variable product's variants are its `variations` (fetched from
    the API: the product lists only their ids); any other product sells itself, so it is its
    own single variant (lines without a variation point at it by the product id)."""
    data = _obj(payload, "product")
    kind = product_type(data)
    if kind in VARIATION_TYPES:
        raise PayloadError("type", _("A variation is not a product; read its parent."))
    product_id = _id(data.get("id"), "id")
    status = _text(data.get("status"), "status").lower() or "publish"
    if kind in VARIABLE_TYPES:
        variants = tuple(
            variation_in(item, currency=currency, field=f"variations[{index}]")
            for index, item in enumerate(variations)
        )
    else:
        variants = (
            VariantIn(
                external_id=product_id,
                sku=_text(data.get("sku"), "sku")[:100],
                title=_text(data.get("name"), "name")[:300],
                price_minor=_money(data.get("price"), currency, "price"),
            ),
        )
    return ProductIn(
        external_id=product_id,
        title=_text(data.get("name"), "name")[:300],
        url=_text(data.get("permalink"), "permalink")[:500],
        image_url=_image(data, "")[:500],
        status=PRODUCT_STATUSES.get(status, "draft"),
        updated_at=_gmt(data, "date_modified") or _gmt(data, "date_created"),
        variants=variants,
    )


# --------------------------------------------------------------------------- refunds


def refund_ids(payload: Any) -> tuple[str, ...]:
    """The ids in an order's refunds summary ({id, reason, total}: no lines, no times)."""
    data = _obj(payload, "order")
    ids = []
    for index, item in enumerate(_list(data.get("refunds"), "refunds")):
        entry = _obj(item, f"refunds[{index}]")
        ids.append(_id(entry.get("id"), f"refunds[{index}].id"))
    return tuple(dict.fromkeys(ids))


def refund_in(
    payload: Any,
    *,
    order_id: str,
    currency: str,
    lines_by_product: Mapping[tuple[str, str], str] | None = None,
    field: str = "refund",
) -> RefundIn:
    """An order refund (GET /orders/<id>/refunds): its amount, time, reason and lines.

    Refund line items are negative copies of the order lines; each names the line it refunds
    in its _refunded_item_id meta. Without it, the order line with the same product and
    variation is taken (`lines_by_product`), else the refund line's own id.
    """
    data = _obj(payload, field)
    lines = []
    for index, item in enumerate(_list(data.get("line_items"), f"{field}.line_items")):
        name = f"{field}.line_items[{index}]"
        line = _obj(item, name)
        own_id = _id(line.get("id"), f"{name}.id")
        refunded = _meta(line, REFUNDED_ITEM_META, f"{name}.")
        if not refunded and lines_by_product:
            key = (
                _id(line.get("product_id"), f"{name}.product_id", required=False),
                _id(line.get("variation_id"), f"{name}.variation_id", required=False),
            )
            refunded = lines_by_product.get(key, "")
        lines.append(
            RefundLineIn(
                line_external_id=(refunded or own_id)[:ID_MAX_LENGTH],
                quantity=abs(_int(line.get("quantity", 0), f"{name}.quantity", negative=True)),
                amount_minor=abs(_money(line.get("total"), currency, f"{name}.total")),
            )
        )
    return RefundIn(
        external_id=_id(data.get("id"), f"{field}.id"),
        order_external_id=order_id,
        refunded_at=_gmt_required(data, "date_created", f"{field}."),
        amount_minor=abs(_money(data.get("amount"), currency, f"{field}.amount")),
        currency=currency,
        lines=tuple(lines),
        reason=_text(data.get("reason"), f"{field}.reason")[:300],
    )


# --------------------------------------------------------------------------- orders


def _line(item: Any, currency: str, field: str) -> tuple[LineIn, int]:
    """An order line and its subtotal. WooCommerce gives the line's subtotal (before
    discounts) and total (after them), both before tax: the unit price is the subtotal per
    unit (rounded up to whole minor units) and the discount whatever makes
    quantity x unit - discount equal the total."""
    data = _obj(item, field)
    quantity = _int(data.get("quantity"), f"{field}.quantity")
    subtotal = _money(data.get("subtotal"), currency, f"{field}.subtotal")
    total = _money(data.get("total"), currency, f"{field}.total")
    if quantity > 0:
        unit = -(-max(subtotal, total) // quantity)
        discount = unit * quantity - total
    else:
        unit, discount = 0, 0
    product_id = _id(data.get("product_id"), f"{field}.product_id", required=False)
    variation_id = _id(data.get("variation_id"), f"{field}.variation_id", required=False)
    line = LineIn(
        external_id=_id(data.get("id"), f"{field}.id"),
        quantity=quantity,
        unit_price_minor=unit,
        discount_minor=discount,
        product_external_id=product_id,
        # A simple product is its own variant (see product_in).
        variant_external_id=variation_id or product_id,
        sku=_text(data.get("sku"), f"{field}.sku")[:100],
        title=_text(data.get("name"), f"{field}.name")[:300],
    )
    return line, subtotal


def lines_by_product(payload: Any) -> dict[tuple[str, str], str]:
    """(product id, variation id) → line id of an order's lines, for refund lines that do
    not name their order line."""
    data = _obj(payload, "order")
    out: dict[tuple[str, str], str] = {}
    for index, item in enumerate(_list(data.get("line_items"), "line_items")):
        name = f"line_items[{index}]"
        line = _obj(item, name)
        key = (
            _id(line.get("product_id"), f"{name}.product_id", required=False),
            _id(line.get("variation_id"), f"{name}.variation_id", required=False),
        )
        out.setdefault(key, _id(line.get("id"), f"{name}.id"))
    return out


def _order_customer(data: dict[str, Any]) -> CustomerIn | None:
    billing = _maybe_obj(data.get("billing"), "billing")
    record = CustomerIn(
        # customer_id 0 is a guest: the billing email and phone identify them.
        external_id=_id(data.get("customer_id"), "customer_id", required=False),
        email=_text(billing.get("email"), "billing.email"),
        phone=_text(billing.get("phone"), "billing.phone"),
        first_name=_text(billing.get("first_name"), "billing.first_name"),
        last_name=_text(billing.get("last_name"), "billing.last_name"),
        city=_text(billing.get("city"), "billing.city")[:120],
        country=_country(billing.get("country"), "billing.country"),
    )
    return None if record.is_empty else record


def _address(value: Any) -> dict[str, Any]:
    data = _maybe_obj(value, "shipping")
    return {
        name: _text(data.get(name), f"shipping.{name}")[:200]
        for name in SHIPPING_ADDRESS_FIELDS
        if data.get(name) not in (None, "")
    }


def base_status(status: str, *, paid: bool, completed: bool) -> str:
    """pending, paid or fulfilled from WooCommerce's order status."""
    if status in FULFILLED_STATUSES:
        return "fulfilled"
    if status in PAID_STATUSES:
        return "paid"
    if status in PENDING_STATUSES:
        return "pending"
    # refunded, cancelled, trash, or a plugin's own status: what the dates say happened.
    if completed:
        return "fulfilled"
    if paid or status == "refunded":
        return "paid"
    return "pending"


def order_in(payload: Any, *, fallback_currency: str, refunds: Sequence[RefundIn] = ()) -> OrderIn:
    """An Order resource with its lines; `refunds` are the order's refunds read from the API
    (the order itself only carries their ids and totals).

    Base status: completed → fulfilled, processing → paid, pending / on-hold / failed →
    pending; refunded and cancelled orders keep what date_paid / date_completed say. Paid
    and fulfilled times are date_paid_gmt and date_completed_gmt; WooCommerce keeps no
    cancellation time, so a cancelled order's is its date_modified_gmt.
    """
    data = _obj(payload, "order")
    order_id = _id(data.get("id"), "id")
    currency = _currency(data.get("currency"), fallback_currency)
    created = _gmt_required(data, "date_created")
    modified = _gmt(data, "date_modified") or created
    paid = _gmt(data, "date_paid")
    completed = _gmt(data, "date_completed")
    status = _text(data.get("status"), "status").lower().removeprefix("wc-") or "pending"
    base = base_status(status, paid=paid is not None, completed=completed is not None)
    paid_at = (paid or completed or created) if base in ("paid", "fulfilled") else None
    fulfilled_at = (completed or paid_at) if base == "fulfilled" else None
    parsed = [
        _line(item, currency, f"line_items[{index}]")
        for index, item in enumerate(_list(data.get("line_items"), "line_items"))
    ]
    codes: list[str] = []
    for index, item in enumerate(_list(data.get("coupon_lines"), "coupon_lines")):
        coupon = _obj(item, f"coupon_lines[{index}]")
        code = _text(coupon.get("code"), f"coupon_lines[{index}].code")[:100]
        if code and code not in codes:
            codes.append(code)
    landing_site = _meta(data, LANDING_PAGE_META, "")[:500]
    return OrderIn(
        external_id=order_id,
        number=_text(data.get("number"), "number")[:64] or order_id,
        currency=currency,
        placed_at=created,
        updated_at=modified,
        status=base,
        customer=_order_customer(data),
        subtotal_minor=_sum((subtotal for _line_in, subtotal in parsed), "line_items"),
        discount_minor=_money(data.get("discount_total"), currency, "discount_total"),
        shipping_minor=_money(data.get("shipping_total"), currency, "shipping_total"),
        tax_minor=_money(data.get("total_tax"), currency, "total_tax"),
        total_minor=_money(data.get("total"), currency, "total"),
        discount_codes=tuple(codes),
        paid_at=paid_at,
        fulfilled_at=fulfilled_at,
        cancelled_at=modified if status == CANCELLED_STATUS else None,
        landing_site=landing_site,
        referring_code=_referring_code(landing_site),
        shipping_address=_address(data.get("shipping")),
        lines=tuple(line for line, _subtotal in parsed),
        refunds=tuple(refunds),
    )
