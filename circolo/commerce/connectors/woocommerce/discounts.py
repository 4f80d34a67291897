"""Discount codes in a WooCommerce shop: one coupon, POST /wp-json/wc/v3/coupons.

- Amount off: discount_type fixed_cart; percent off: percent; free shipping: a fixed_cart
  coupon of 0 with free_shipping (the shop's Free shipping method must accept "a valid free
  shipping coupon"); free product: 100 percent on that product, limit_usage_to_x_items 1.
- Every coupon: usage_limit 1, usage_limit_per_user 1, email_restrictions [the member's
  email], minimum_amount, and the label in description. date_expires carries the end with
  its UTC offset: WooCommerce reads an offset when given one, and the REST controller
  ignores date_expires_gmt on writes (WC_Coupon has no setter for it).
- WooCommerce lower-cases codes and refuses an existing one with 400
  woocommerce_rest_coupon_code_already_exists; GET coupons?code= finds the holder, which is
  the answer when it is this spec's coupon (our description, usage limit 1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext as _

from circolo.commerce.connectors.base import ConnectorError
from circolo.commerce.connectors.woocommerce.api import API_PREFIX
from circolo.commerce.discounts import (
    AMOUNT_OFF,
    FREE_PRODUCT,
    FREE_SHIPPING,
    CreatedDiscount,
    DiscountError,
    DiscountSpec,
    Refused,
    api_session,
    decimal_text,
    message_of,
    percent_text,
    utc_text,
)

if TYPE_CHECKING:
    from circolo.commerce.connectors.http import ApiClient

COUPONS = f"{API_PREFIX}/coupons"
DUPLICATE = "woocommerce_rest_coupon_code_already_exists"


def describe(refused: Refused) -> str:
    """WooCommerce's message: {"code": "…", "message": "…", "data": {"status": 400}}."""
    body = refused.body
    if isinstance(body, dict) and body.get("message"):
        return message_of(body["message"])
    return refused.text


def create(*, open_client: Callable[[], ApiClient], spec: DiscountSpec) -> CreatedDiscount:
    """Make the coupon (see the module's docstring)."""
    body = coupon(spec)
    with api_session(open_client, describe=describe) as client:
        try:
            answer, _response = client.post_json(COUPONS, body)
        except Refused as refused:
            mine = own_coupon(client, spec) if _code(refused) == DUPLICATE else None
            if mine is None:
                raise
            return CreatedDiscount(code=spec.code, external_id=mine)
        ident = answer.get("id") if isinstance(answer, dict) else None
        if isinstance(ident, bool) or not isinstance(ident, int):
            raise ConnectorError("WooCommerce's answer has no coupon id")
        return CreatedDiscount(code=spec.code, external_id=str(ident))


def coupon(spec: DiscountSpec) -> dict[str, Any]:
    """The coupon resource of a spec: usable once in total and once per customer."""
    body: dict[str, Any] = {
        "code": spec.code,
        "description": spec.label,
        "usage_limit": 1,
        "usage_limit_per_user": 1,
        "individual_use": False,
    }
    if spec.customer_email:
        body["email_restrictions"] = [spec.customer_email]
    if spec.min_order_minor:
        body["minimum_amount"] = decimal_text(spec.min_order_minor, spec.currency)
    if spec.ends_at is not None:
        body["date_expires"] = utc_text(spec.ends_at)
    if spec.kind == AMOUNT_OFF:
        body.update(
            discount_type="fixed_cart", amount=decimal_text(spec.amount_minor, spec.currency)
        )
    elif spec.kind == FREE_SHIPPING:
        body.update(discount_type="fixed_cart", amount="0", free_shipping=True)
    elif spec.kind == FREE_PRODUCT:
        ident = spec.product_external_id
        if not ident.isdigit():
            raise DiscountError(
                _("“%(id)s” is not a WooCommerce product id.") % {"id": ident}, retryable=False
            )
        body.update(
            discount_type="percent",
            amount="100",
            product_ids=[int(ident)],
            limit_usage_to_x_items=1,
        )
    else:
        body.update(discount_type="percent", amount=percent_text(spec.percent))
    return body


def own_coupon(client: ApiClient, spec: DiscountSpec) -> str | None:
    """The id of the coupon holding spec.code if it is this spec's (our description, usage
    limit 1): an earlier attempt whose answer was lost made it."""
    try:
        found, _response = client.get_json(COUPONS, params={"code": spec.code})
    except Refused:
        return None
    for item in found if isinstance(found, list) else []:
        if not isinstance(item, dict):
            continue
        if (
            str(item.get("code") or "").lower() == spec.code.lower()
            and item.get("description") == spec.label
            and item.get("usage_limit") == 1
            and isinstance(item.get("id"), int)
        ):
            return str(item["id"])
    return None


def _code(refused: Refused) -> str:
    return str(refused.body.get("code") or "") if isinstance(refused.body, dict) else ""
