"""Discount codes in a Shopify shop: a price rule holding one code, through the REST Admin API.

REST price rules rather than the GraphQL discountCodeBasicCreate/discountCodeFreeShippingCreate
mutations: the connector speaks the REST Admin API of api.API_VERSION with one access token
and one rate-limit policy, and a price rule carries everything a reward needs (value and
target, minimum subtotal, end, usage_limit, once_per_customer, prerequisite customers).
Shopify calls REST legacy; the GraphQL mutations take the same fields the day it goes.
The app needs the write_price_rules scope (read_customers to restrict a code to its member,
read_products for a free product).

- POST price_rules.json, then POST price_rules/<id>/discount_codes.json with the code. When
  the second step fails the rule is deleted again: a rule without a code is clutter in the
  merchant's admin.
- Amount off: fixed_amount across all line items; percent off: percentage across them; free
  shipping: 100 % off each shipping line; free product: the price of one unit (of its
  dearest variant) off across that product's lines. A REST price rule cannot limit a
  percentage to one unit, so the fixed amount keeps the gift to one unit's worth however many
  the cart holds.
- A duplicate code answers 422 {"errors": {"code": ["must be unique. …"]}};
  GET discount_codes/lookup.json?code= answers 303 with the code's Location, which names its
  price rule: if that rule is the one this spec describes (our title, usage limit 1), an
  earlier attempt made it and it is the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.utils import timezone
from django.utils.translation import gettext as _

from circolo.commerce.connectors.base import ConnectorError
from circolo.commerce.connectors.shopify.api import API_VERSION
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
from circolo.commerce.money import to_minor
from circolo.commerce.schema import PayloadError

if TYPE_CHECKING:
    import datetime as dt

    from circolo.commerce.connectors.http import ApiClient

logger = logging.getLogger(__name__)

PREFIX = f"/admin/api/{API_VERSION}/"


def describe(refused: Refused) -> str:
    """Shopify's message: {"errors": "text"} or {"errors": {"field": ["message", …]}}."""
    body = refused.body
    if isinstance(body, dict) and "errors" in body:
        return message_of(body["errors"])
    return refused.text


def is_duplicate(refused: Refused) -> bool:
    errors = refused.body.get("errors") if isinstance(refused.body, dict) else None
    return (
        refused.status == 422
        and isinstance(errors, dict)
        and "unique" in message_of(errors.get("code")).lower()
    )


def create(
    *, open_client: Callable[[], ApiClient], spec: DiscountSpec, now: dt.datetime | None = None
) -> CreatedDiscount:
    """Make the price rule and its code (see the module's docstring)."""
    with api_session(open_client, describe=describe) as client:
        rule = price_rule(
            spec,
            now=now or timezone.now(),
            customer_id=customer_id(client, spec.customer_email),
            unit_price=unit_price(client, spec) if spec.kind == FREE_PRODUCT else "",
        )
        body, _response = client.post_json(f"{PREFIX}price_rules.json", {"price_rule": rule})
        rule_id = _id(body, "price_rule")
        path = f"{PREFIX}price_rules/{rule_id}/discount_codes.json"
        try:
            client.post_json(path, {"discount_code": {"code": spec.code}})
        except Refused as refused:
            mine = own_rule(client, spec) if is_duplicate(refused) else None
            if mine != rule_id:
                delete_rule(client, rule_id)
            if mine is None:
                raise
            return CreatedDiscount(code=spec.code, external_id=mine)
        except ConnectorError:
            # The code may or may not exist now; without its rule it surely does not, so a
            # later attempt starts clean.
            delete_rule(client, rule_id)
            raise
        return CreatedDiscount(code=spec.code, external_id=rule_id)


def price_rule(
    spec: DiscountSpec, *, now: dt.datetime, customer_id: str, unit_price: str
) -> dict[str, Any]:
    """The PriceRule resource of a spec: usable once in total and once per customer."""
    rule: dict[str, Any] = {
        "title": spec.label,
        "starts_at": utc_text(now),
        "ends_at": utc_text(spec.ends_at) if spec.ends_at is not None else None,
        "usage_limit": 1,
        "once_per_customer": True,
        "customer_selection": "prerequisite" if customer_id else "all",
    }
    if customer_id:
        rule["prerequisite_customer_ids"] = [int(customer_id)]
    if spec.min_order_minor:
        rule["prerequisite_subtotal_range"] = {
            "greater_than_or_equal_to": decimal_text(spec.min_order_minor, spec.currency)
        }
    if spec.kind == AMOUNT_OFF:
        rule.update(
            target_type="line_item",
            target_selection="all",
            allocation_method="across",
            value_type="fixed_amount",
            value=f"-{decimal_text(spec.amount_minor, spec.currency)}",
        )
    elif spec.kind == FREE_SHIPPING:
        rule.update(
            target_type="shipping_line",
            target_selection="all",
            allocation_method="each",
            value_type="percentage",
            value="-100.0",
        )
    elif spec.kind == FREE_PRODUCT:
        rule.update(
            target_type="line_item",
            target_selection="entitled",
            entitled_product_ids=[int(spec.product_external_id)],
            allocation_method="across",
            value_type="fixed_amount",
            value=f"-{unit_price}",
        )
    else:
        rule.update(
            target_type="line_item",
            target_selection="all",
            allocation_method="across",
            value_type="percentage",
            value=f"-{percent_text(spec.percent)}",
        )
    return rule


def customer_id(client: ApiClient, email: str) -> str:
    """The shop's customer with exactly this email, or "" (the code is then for anyone: a
    member who never bought in the shop has no customer yet). A refused search (no
    read_customers scope) leaves the code unrestricted too; an outage fails the attempt."""
    if not email:
        return ""
    try:
        body, _response = client.get_json(
            f"{PREFIX}customers/search.json",
            params={"query": f"email:{email}", "fields": "id,email", "limit": "10"},
        )
    except Refused as refused:
        logger.warning("Shopify customer search refused, code left unrestricted: %s", refused)
        return ""
    found = body.get("customers") if isinstance(body, dict) else None
    for customer in found if isinstance(found, list) else []:
        if not isinstance(customer, dict):
            continue
        if str(customer.get("email") or "").strip().lower() == email.lower():
            ident = str(customer.get("id") or "")
            if ident.isdigit():
                return ident
    return ""


def unit_price(client: ApiClient, spec: DiscountSpec) -> str:
    """The price of one unit of the product's dearest variant, as a decimal string."""
    ident = spec.product_external_id
    if not ident.isdigit():
        raise DiscountError(
            _("“%(id)s” is not a Shopify product id.") % {"id": ident}, retryable=False
        )
    try:
        body, _response = client.get_json(
            f"{PREFIX}products/{ident}.json", params={"fields": "id,variants"}
        )
    except Refused as refused:
        if refused.status == 404:
            raise DiscountError(
                _("The product %(id)s is not in the store.") % {"id": ident}, retryable=False
            ) from refused
        raise
    product = body.get("product") if isinstance(body, dict) else None
    variants = product.get("variants") if isinstance(product, dict) else None
    prices = []
    for variant in variants if isinstance(variants, list) else []:
        try:
            prices.append(to_minor(variant.get("price"), spec.currency))
        except (PayloadError, AttributeError):
            continue
    if not prices or max(prices) <= 0:
        raise DiscountError(
            _("The product %(id)s has no price to give away.") % {"id": ident}, retryable=False
        )
    return decimal_text(max(prices), spec.currency)


def own_rule(client: ApiClient, spec: DiscountSpec) -> str | None:
    """The id of the price rule holding spec.code if that rule is this spec's (our title,
    usage limit 1): an earlier attempt whose answer was lost made it."""
    try:
        # Answered 303 See Other: the Location header is the answer (the client does not
        # follow redirects).
        response = client.request(
            "GET", f"{PREFIX}discount_codes/lookup.json", params={"code": spec.code}
        )
    except Refused:
        return None
    return _rule_at(client, spec, response.headers.get("Location", ""))


def _rule_at(client: ApiClient, spec: DiscountSpec, location: str) -> str | None:
    parts = urlsplit(location).path.split("/")
    if "price_rules" not in parts:
        return None
    index = parts.index("price_rules")
    rule_id = parts[index + 1] if index + 1 < len(parts) else ""
    if not rule_id.isdigit():
        return None
    try:
        body, _response = client.get_json(f"{PREFIX}price_rules/{rule_id}.json")
    except Refused:
        return None
    rule = body.get("price_rule") if isinstance(body, dict) else None
    if not isinstance(rule, dict):
        return None
    if rule.get("title") == spec.label and rule.get("usage_limit") == 1:
        return rule_id
    return None


def delete_rule(client: ApiClient, rule_id: str) -> None:
    try:
        client.request("DELETE", f"{PREFIX}price_rules/{rule_id}.json")
    except (Refused, ConnectorError) as error:
        logger.warning("Shopify price rule %s without its code left behind: %s", rule_id, error)


def _id(body: Any, key: str) -> str:
    item = body.get(key) if isinstance(body, dict) else None
    ident = item.get("id") if isinstance(item, dict) else None
    if isinstance(ident, bool) or not isinstance(ident, int | str) or not str(ident).isdigit():
        raise ConnectorError(f"Shopify's answer has no {key} id")
    return str(ident)
