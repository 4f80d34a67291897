"""Discount codes in a Saleor shop: a voucher with one code, listed in the shop's channels.

- voucherCreate(input: {name, addCodes: [code], type, discountValueType, usageLimit: 1,
  applyOncePerCustomer: true, …}), then voucherChannelListingUpdate adding every active
  channel that sells in the store's currency, with the value and minimum there (a voucher is
  usable only in the channels it is listed in). When listing fails the voucher is deleted
  again. The app needs MANAGE_DISCOUNTS (and an app token sees the channels).
- Amount off: ENTIRE_ORDER, FIXED; percent off: ENTIRE_ORDER, PERCENTAGE; free shipping:
  SHIPPING, 100 %; free product: SPECIFIC_PRODUCT on that product, 100 %, applyOncePerOrder,
  which Saleor applies to one unit of the cheapest matching line.
- Saleor vouchers cannot be restricted to one customer's email.
- Mutations report refusals in their `errors` list with HTTP 200; an existing code is
  ALREADY_EXISTS. vouchers(filter: {search: code}) finds the holder, which is the answer when
  it is this spec's voucher (our name, usage limit 1); its listing is then made again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext as _

from circolo.commerce.connectors.base import ConnectorError
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

logger = logging.getLogger(__name__)

CHANNELS = "query CircoloChannels { channels { id slug currencyCode isActive } }"

VOUCHER_CREATE = """
mutation CircoloVoucherCreate($input: VoucherInput!) {
  voucherCreate(input: $input) {
    voucher { id name usageLimit }
    errors { field message code voucherCodes }
  }
}
"""

VOUCHER_LISTING = """
mutation CircoloVoucherListing($id: ID!, $input: VoucherChannelListingInput!) {
  voucherChannelListingUpdate(id: $id, input: $input) {
    voucher { id }
    errors { field message code channels }
  }
}
"""

VOUCHER_DELETE = """
mutation CircoloVoucherDelete($id: ID!) {
  voucherDelete(id: $id) { errors { field message code } }
}
"""

VOUCHERS = """
query CircoloVouchers($search: String!) {
  vouchers(first: 20, filter: {search: $search}) {
    edges { node { id name usageLimit codes(first: 20) { edges { node { code } } } } }
  }
}
"""


def describe(refused: Refused) -> str:
    body = refused.body
    if isinstance(body, dict) and body.get("errors"):
        return _errors_text(body["errors"])
    return refused.text


class Rejected(Exception):
    """A mutation's `errors` list, or a top-level GraphQL error (permission, bad input)."""

    def __init__(self, errors: Any) -> None:
        super().__init__(_errors_text(errors))
        self.errors = errors if isinstance(errors, list) else [errors]

    def has(self, code: str) -> bool:
        return any(isinstance(item, dict) and item.get("code") == code for item in self.errors)


def create(*, open_client: Callable[[], ApiClient], spec: DiscountSpec) -> CreatedDiscount:
    """Make the voucher and list it (see the module's docstring)."""
    with api_session(open_client, describe=describe) as client:
        try:
            return _create(client, spec)
        except Rejected as rejected:
            raise DiscountError(
                _("The store refused the discount: %(detail)s") % {"detail": rejected},
                retryable=False,
            ) from rejected


def _create(client: ApiClient, spec: DiscountSpec) -> CreatedDiscount:
    channels = channel_ids(client, spec.currency)
    try:
        data = graphql(client, VOUCHER_CREATE, {"input": voucher(spec)})
        voucher_id = _payload(data, "voucherCreate", "voucher")
        made = True
    except Rejected as rejected:
        mine = own_voucher(client, spec) if rejected.has("ALREADY_EXISTS") else None
        if mine is None:
            raise
        voucher_id, made = mine, False
    try:
        data = graphql(
            client, VOUCHER_LISTING, {"id": voucher_id, "input": listing(spec, channels)}
        )
        _payload(data, "voucherChannelListingUpdate", "voucher")
    except (Rejected, ConnectorError):
        if made:
            # Unlisted, the voucher works nowhere: remove it so a later attempt starts clean.
            _delete(client, voucher_id)
        raise
    return CreatedDiscount(code=spec.code, external_id=voucher_id)


def voucher(spec: DiscountSpec) -> dict[str, Any]:
    """The VoucherInput of a spec: usable once in total and once per customer."""
    body: dict[str, Any] = {
        "name": spec.label,
        "addCodes": [spec.code],
        "usageLimit": 1,
        "applyOncePerCustomer": True,
        "applyOncePerOrder": spec.kind == FREE_PRODUCT,
        "onlyForStaff": False,
    }
    if spec.ends_at is not None:
        body["endDate"] = utc_text(spec.ends_at)
    if spec.kind == AMOUNT_OFF:
        body.update(type="ENTIRE_ORDER", discountValueType="FIXED")
    elif spec.kind == FREE_SHIPPING:
        body.update(type="SHIPPING", discountValueType="PERCENTAGE")
    elif spec.kind == FREE_PRODUCT:
        body.update(
            type="SPECIFIC_PRODUCT",
            discountValueType="PERCENTAGE",
            products=[spec.product_external_id],
        )
    else:
        body.update(type="ENTIRE_ORDER", discountValueType="PERCENTAGE")
    return body


def listing(spec: DiscountSpec, channels: list[str]) -> dict[str, Any]:
    """The VoucherChannelListingInput: the value (and minimum) in each channel."""
    if spec.kind == AMOUNT_OFF:
        value = decimal_text(spec.amount_minor, spec.currency)
    elif spec.kind == FREE_SHIPPING or spec.kind == FREE_PRODUCT:
        value = "100"
    else:
        value = percent_text(spec.percent)
    entry: dict[str, Any] = {"discountValue": value}
    if spec.min_order_minor:
        entry["minAmountSpent"] = decimal_text(spec.min_order_minor, spec.currency)
    return {"addChannels": [{"channelId": channel, **entry} for channel in channels]}


def channel_ids(client: ApiClient, currency: str) -> list[str]:
    """The ids of the shop's active channels selling in `currency`."""
    data = graphql(client, CHANNELS, {})
    channels = data.get("channels")
    found = [
        str(channel["id"])
        for channel in (channels if isinstance(channels, list) else [])
        if isinstance(channel, dict)
        and channel.get("isActive") is True
        and str(channel.get("currencyCode") or "").upper() == currency
        and channel.get("id")
    ]
    if not found:
        raise DiscountError(
            _("The shop has no active channel selling in %(currency)s.") % {"currency": currency},
            retryable=False,
        )
    return found


def own_voucher(client: ApiClient, spec: DiscountSpec) -> str | None:
    """The id of the voucher holding spec.code if it is this spec's (our name, usage limit
    1): an earlier attempt whose answer was lost made it."""
    data = graphql(client, VOUCHERS, {"search": spec.code})
    connection = data.get("vouchers")
    edges = connection.get("edges") if isinstance(connection, dict) else None
    for edge in edges if isinstance(edges, list) else []:
        node = edge.get("node") if isinstance(edge, dict) else None
        if not isinstance(node, dict) or not node.get("id"):
            continue
        codes = (node.get("codes") or {}).get("edges") or []
        held = {
            str((item.get("node") or {}).get("code") or "").lower()
            for item in codes
            if isinstance(item, dict)
        }
        if (
            spec.code.lower() in held
            and node.get("name") == spec.label
            and node.get("usageLimit") == 1
        ):
            return str(node["id"])
    return None


def graphql(client: ApiClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """The `data` of an answer; Rejected for a top-level GraphQL error (Saleor answers those
    with HTTP 200 too: a missing permission, an unknown product id)."""
    body, _response = client.post_json("", {"query": query, "variables": variables})
    if not isinstance(body, dict):
        raise ConnectorError("Saleor's answer is not a GraphQL response")
    if body.get("errors"):
        raise Rejected(body["errors"])
    data = body.get("data")
    if not isinstance(data, dict):
        raise ConnectorError("Saleor's answer has no data")
    return data


def _payload(data: dict[str, Any], mutation: str, key: str) -> str:
    """The id of the object a mutation made; Rejected with its `errors`."""
    payload = data.get(mutation)
    if not isinstance(payload, dict):
        raise ConnectorError(f"Saleor's answer has no {mutation}")
    if payload.get("errors"):
        raise Rejected(payload["errors"])
    made = payload.get(key)
    ident = made.get("id") if isinstance(made, dict) else None
    if not isinstance(ident, str) or not ident:
        raise ConnectorError(f"Saleor's {mutation} answer has no {key} id")
    return ident


def _delete(client: ApiClient, voucher_id: str) -> None:
    try:
        data = graphql(client, VOUCHER_DELETE, {"id": voucher_id})
        errors = (data.get("voucherDelete") or {}).get("errors")
        if errors:
            raise Rejected(errors)
    except (Rejected, Refused, ConnectorError) as error:
        logger.warning("Saleor voucher %s left unlisted: %s", voucher_id, error)


def _errors_text(errors: Any) -> str:
    items = errors if isinstance(errors, list) else [errors]
    parts = []
    for item in items:
        if isinstance(item, dict):
            field = item.get("field")
            message = message_of(item.get("message")) or str(item.get("code") or "")
            codes = item.get("voucherCodes")
            if isinstance(codes, list) and codes:
                message = f"{message} ({', '.join(str(code) for code in codes)})"
            parts.append(f"{field}: {message}" if field else message)
        else:
            parts.append(message_of(item))
    return "; ".join(part for part in parts if part)
