"""Discount codes in a BigCommerce store: one coupon, POST /v2/coupons.

- Amount off: per_total_discount; percent off: percentage_discount; free shipping:
  free_shipping; all on every category (applies_to categories [0]). Free product:
  per_total_discount of one unit's price (its dearest variant) applied to that product only;
  per_item_discount would take that amount off every unit in the cart.
- Every coupon: max_uses 1, max_uses_per_customer 1, min_purchase, expires (RFC 2822),
  enabled. BigCommerce coupons cannot be restricted to one customer, and work in the store's
  default currency only.
- The coupon's name must be unique in the store too, so it is the label followed by the code.
  An existing code or name answers 409; GET /v2/coupons?code= finds the holder, which is the
  answer when it is this spec's coupon (our name, max_uses 1).
"""

from __future__ import annotations

import datetime as dt
import email.utils
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext as _

from circolo.commerce.connectors.base import ConnectorError
from circolo.commerce.connectors.bigcommerce import api
from circolo.commerce.discounts import (
    AMOUNT_OFF,
    FREE_PRODUCT,
    FREE_SHIPPING,
    TITLE_MAX_LENGTH,
    CreatedDiscount,
    DiscountError,
    DiscountSpec,
    Refused,
    api_session,
    decimal_text,
    message_of,
    percent_text,
)
from circolo.commerce.money import to_minor
from circolo.commerce.schema import PayloadError

if TYPE_CHECKING:
    from circolo.commerce.connectors.http import ApiClient

COUPONS = "v2/coupons"
EVERYTHING = {"entity": "categories", "ids": [0]}


def describe(refused: Refused) -> str:
    """BigCommerce's message: V2 answers [{"status": 409, "message": "…", "details": {…}}],
    V3 ones {"title": "…", "errors": {…}}."""
    body = refused.body
    if isinstance(body, list):
        parts = []
        for item in body:
            if isinstance(item, dict):
                parts.append(message_of(item.get("message")))
                parts.append(message_of(item.get("details")))
        text = "; ".join(part for part in parts if part)
        if text:
            return text
    if isinstance(body, dict):
        text = "; ".join(
            part for part in (message_of(body.get("title")), message_of(body.get("errors"))) if part
        )
        if text:
            return text
    return refused.text


def name(spec: DiscountSpec) -> str:
    """The coupon's name: the label, then the code that makes it unique."""
    suffix = f" ({spec.code})"
    return spec.label[: TITLE_MAX_LENGTH - len(suffix)].rstrip() + suffix


def create(*, open_client: Callable[[], ApiClient], spec: DiscountSpec) -> CreatedDiscount:
    """Make the coupon (see the module's docstring)."""
    with api_session(open_client, describe=describe) as client:
        price = unit_price(client, spec) if spec.kind == FREE_PRODUCT else ""
        try:
            answer, _response = client.post_json(COUPONS, coupon(spec, unit_price=price))
        except Refused as refused:
            mine = own_coupon(client, spec) if refused.status == 409 else None
            if mine is None:
                raise
            return CreatedDiscount(code=spec.code, external_id=mine)
        ident = answer.get("id") if isinstance(answer, dict) else None
        if isinstance(ident, bool) or not isinstance(ident, int):
            raise ConnectorError("BigCommerce's answer has no coupon id")
        return CreatedDiscount(code=spec.code, external_id=str(ident))


def coupon(spec: DiscountSpec, *, unit_price: str = "") -> dict[str, Any]:
    """The coupon resource of a spec: usable once in total and once per customer."""
    body: dict[str, Any] = {
        "name": name(spec),
        "code": spec.code,
        "enabled": True,
        "max_uses": 1,
        "max_uses_per_customer": 1,
        "applies_to": EVERYTHING,
    }
    if spec.min_order_minor:
        body["min_purchase"] = decimal_text(spec.min_order_minor, spec.currency)
    if spec.ends_at is not None:
        body["expires"] = email.utils.format_datetime(spec.ends_at.astimezone(dt.UTC))
    if spec.kind == AMOUNT_OFF:
        body.update(
            type="per_total_discount", amount=decimal_text(spec.amount_minor, spec.currency)
        )
    elif spec.kind == FREE_SHIPPING:
        body.update(type="free_shipping", amount="0")
    elif spec.kind == FREE_PRODUCT:
        body.update(
            type="per_total_discount",
            amount=unit_price,
            applies_to={"entity": "products", "ids": [int(spec.product_external_id)]},
        )
    else:
        body.update(type="percentage_discount", amount=percent_text(spec.percent))
    return body


def unit_price(client: ApiClient, spec: DiscountSpec) -> str:
    """The price of one unit of the product's dearest variant, as a decimal string."""
    ident = spec.product_external_id
    if not ident.isdigit():
        raise DiscountError(
            _("“%(id)s” is not a BigCommerce product id.") % {"id": ident}, retryable=False
        )
    try:
        body, _response = client.get_json(
            f"v3/catalog/products/{ident}", params={"include": "variants"}
        )
    except Refused as refused:
        if refused.status == 404:
            raise DiscountError(
                _("The product %(id)s is not in the store.") % {"id": ident}, retryable=False
            ) from refused
        raise
    product = body.get("data") if isinstance(body, dict) else None
    if not isinstance(product, dict):
        raise ConnectorError(f"GET v3/catalog/products/{ident}: the answer has no data")
    values = [product.get("calculated_price"), product.get("price")]
    variants = product.get("variants")
    for variant in variants if isinstance(variants, list) else []:
        if isinstance(variant, dict):
            values.append(variant.get("calculated_price"))
    prices = []
    for value in values:
        if value is None:
            continue
        try:
            prices.append(to_minor(value, spec.currency))
        except PayloadError:
            continue
    if not prices or max(prices) <= 0:
        raise DiscountError(
            _("The product %(id)s has no price to give away.") % {"id": ident}, retryable=False
        )
    return decimal_text(max(prices), spec.currency)


def own_coupon(client: ApiClient, spec: DiscountSpec) -> str | None:
    """The id of the coupon holding spec.code if it is this spec's (our name, max_uses 1):
    an earlier attempt whose answer was lost made it."""
    try:
        # api.get: V2 lists answer 204 No Content when nothing matches.
        found = api.get(client, COUPONS, {"code": spec.code})
    except Refused:
        return None
    for item in found if isinstance(found, list) else []:
        if not isinstance(item, dict):
            continue
        if (
            str(item.get("code") or "").lower() == spec.code.lower()
            and item.get("name") == name(spec)
            and item.get("max_uses") == 1
            and isinstance(item.get("id"), int)
        ):
            return str(item["id"])
    return None
