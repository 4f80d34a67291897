"""Reading a BigCommerce store through its REST API.

The base address is the store's "API path" (…/stores/<store hash>/, BigCommerce appends v2/
or v3/); requests authenticate with the X-Auth-Token header. Orders come from Orders V2
(/v2/orders: page and limit, min_date_modified, 204 No Content past the end), with their
products, coupons and shipping addresses; refunds from /v3/orders/…/payment_actions/refunds;
customers and catalog products from V3 (page and limit, date_modified:min, meta.pagination
with total_pages and links.next). A 429 carries X-Rate-Limit-Time-Reset-Ms, the
milliseconds until the quota refills; ApiClient waits that long and retries.
Documentation: https://developer.bigcommerce.com/docs/start/authentication/api-accounts,
https://developer.bigcommerce.com/docs/start/best-practices/api-rate-limits,
https://developer.bigcommerce.com/docs/rest-management/orders and the V3 references.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from circolo.commerce.connectors.base import ConnectorError
from circolo.commerce.connectors.bigcommerce import payloads
from circolo.commerce.connectors.http import ApiClient

PAGE_SIZE = 50
# Sub-resources of one order (its products, coupons, addresses) in as few requests as may be.
SUB_PAGE_SIZE = 250
RESET_HEADER = "X-Rate-Limit-Time-Reset-Ms"


class NotFound(ConnectorError):
    """The API answered 404 for the resource asked for."""


def api_base(api_url: str) -> str:
    """The API path without its version: https://api.bigcommerce.com/stores/<hash>/.

    BigCommerce shows the API path as …/stores/<hash>/v3/; either form is accepted.
    """
    url = (api_url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConnectorError(
            "api_url: give the store's API path, such as https://api.bigcommerce.com/stores/abc123/v3/"
        )
    path = parts.path.rstrip("/")
    for version in ("/v2", "/v3"):
        path = path.removesuffix(version)
    return f"{parts.scheme}://{parts.netloc}{path}/"


def store_hash(api_url: str) -> str:
    """The store hash inside an API path (…/stores/<hash>/…), or ""."""
    segments = [part for part in urlsplit(api_url or "").path.split("/") if part]
    if "stores" in segments:
        index = segments.index("stores")
        if index + 1 < len(segments):
            return segments[index + 1]
    return ""


def rate_limit_wait(response: httpx.Response) -> float | None:
    """Seconds until the quota refills, from X-Rate-Limit-Time-Reset-Ms; None without it."""
    value = response.headers.get(RESET_HEADER)
    if value is None:
        return None
    try:
        return max(0.0, float(value) / 1000.0)
    except ValueError:
        return None


def _raise_not_found(response: httpx.Response) -> None:
    # Raised from the response hook so ApiClient neither retries it nor flattens it into a
    # plain ConnectorError: a 404 of one resource means it is gone, which callers handle.
    if response.status_code == 404:
        raise NotFound(f"{response.request.method} {response.request.url.path}: HTTP 404")


def make_client(
    *,
    api_url: str,
    access_token: str,
    sleep: Callable[[float], None],
    transport: httpx.BaseTransport | None = None,
) -> ApiClient:
    if not access_token:
        raise ConnectorError("access_token: the store has no API access token")
    client = ApiClient(
        base_url=api_base(api_url),
        headers={
            "X-Auth-Token": access_token,
            "Accept": "application/json",
            "Content-Type": "application/json",
        },
        sleep=sleep,
        retry_after=rate_limit_wait,
        transport=transport,
    )
    client.http.event_hooks = {"request": [], "response": [_raise_not_found]}
    return client


def get(api: ApiClient, path: str, params: Mapping[str, Any] | None = None) -> Any:
    """The JSON of a GET; None for an empty answer (V2 lists answer 204 past their end)."""
    response = api.request("GET", path, params=dict(params or {}))
    if response.status_code == 204 or not response.content.strip():
        return None
    try:
        return response.json()
    except ValueError as error:
        raise ConnectorError(f"GET {path}: the answer is not JSON") from error


def _list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConnectorError(f"GET {path}: expected a list")
    return value


def v2_all(api: ApiClient, path: str) -> list[Any]:
    """Every row of a V2 sub-resource list, page after page until a short page."""
    found: list[Any] = []
    page = 1
    while True:
        batch = _list(get(api, path, {"page": page, "limit": SUB_PAGE_SIZE}), path)
        found.extend(batch)
        if len(batch) < SUB_PAGE_SIZE:
            return found
        page += 1


def v3_list(api: ApiClient, path: str, params: Mapping[str, Any]) -> tuple[list[Any], bool]:
    """The `data` of a V3 collection and whether meta.pagination says more pages follow."""
    body = get(api, path, params)
    if body is None:
        return [], False
    if not isinstance(body, Mapping):
        raise ConnectorError(f"GET {path}: expected an object")
    data = _list(body.get("data"), path)
    meta = body.get("meta")
    pagination = meta.get("pagination") if isinstance(meta, Mapping) else None
    if isinstance(pagination, Mapping):
        current, total = pagination.get("current_page"), pagination.get("total_pages")
        links = pagination.get("links")
        if isinstance(current, int) and isinstance(total, int):
            return data, current < total
        if isinstance(links, Mapping):
            return data, bool(links.get("next"))
    return data, len(data) >= int(params.get("limit", PAGE_SIZE))


def since_param(since: dt.datetime) -> str:
    """A time for min_date_modified / date_modified:min: ISO 8601 in UTC."""
    return since.astimezone(dt.UTC).isoformat(timespec="seconds")


def ping(api: ApiClient) -> Any:
    """The store's information (GET /v2/store): proves the API path and token work."""
    try:
        return get(api, "v2/store")
    except NotFound as error:
        raise ConnectorError(
            "api_url: the API path answers 404; check the store's API path"
        ) from error


def _one(api: ApiClient, path: str, params: Mapping[str, Any] | None = None) -> Any:
    """One resource, or None when the API says it no longer exists. A 404 is first checked
    against the store itself, so a wrong API path fails loudly instead of looking empty."""
    try:
        return get(api, path, params)
    except NotFound:
        ping(api)
        return None


# --------------------------------------------------------------------------- orders


@dataclass(frozen=True)
class OrderBundle:
    """A V2 order and what payloads.order_record needs with it."""

    order: Mapping[str, Any]
    products: list[Any]
    coupons: list[Any]
    shipping_addresses: list[Any]
    refunds: list[Any]


def _order_parts(api: ApiClient, order: Mapping[str, Any], refunds: list[Any]) -> OrderBundle:
    order_id = order.get("id")
    if isinstance(order_id, bool) or not isinstance(order_id, int | str):
        raise ConnectorError("GET v2/orders: an order has no id")
    base = f"v2/orders/{order_id}"
    return OrderBundle(
        order=order,
        products=v2_all(api, f"{base}/products"),
        coupons=v2_all(api, f"{base}/coupons"),
        shipping_addresses=v2_all(api, f"{base}/shipping_addresses"),
        refunds=refunds,
    )


def order_bundle(api: ApiClient, order_id: str) -> OrderBundle | None:
    """An order as it is now with its parts, or None when it no longer exists."""
    order = _one(api, f"v2/orders/{order_id}")
    if order is None:
        return None
    if not isinstance(order, Mapping):
        raise ConnectorError(f"GET v2/orders/{order_id}: expected an object")
    refunds, _more = v3_list(api, f"v3/orders/{order_id}/payment_actions/refunds", {})
    return _order_parts(api, order, refunds)


def orders_page(
    api: ApiClient, *, page: int, since: dt.datetime | None, limit: int = PAGE_SIZE
) -> tuple[list[OrderBundle], bool]:
    """One page of orders (oldest id first) with their parts; True when more may follow."""
    params: dict[str, Any] = {"page": page, "limit": limit}
    if since is not None:
        params["min_date_modified"] = since_param(since)
    found = _list(get(api, "v2/orders", params), "v2/orders")
    # Incomplete orders (status 0) are abandoned checkouts: not worth their sub-requests.
    orders = [
        order for order in found if isinstance(order, Mapping) and not payloads.is_incomplete(order)
    ]
    refunds = refunds_of(api, [order.get("id") for order in orders])
    bundles = [_order_parts(api, order, refunds.get(str(order.get("id")), [])) for order in orders]
    return bundles, len(found) >= limit


def refunds_of(api: ApiClient, order_ids: list[Any]) -> dict[str, list[Any]]:
    """The refunds of many orders in few requests (GET /v3/orders/payment_actions/refunds
    with order_id:in), grouped by order id."""
    ids = [str(order_id) for order_id in order_ids if isinstance(order_id, int | str)]
    grouped: dict[str, list[Any]] = {order_id: [] for order_id in ids}
    if not ids:
        return grouped
    page = 1
    while True:
        params = {"order_id:in": ",".join(ids), "page": page, "limit": SUB_PAGE_SIZE}
        data, more = v3_list(api, "v3/orders/payment_actions/refunds", params)
        for refund in data:
            if isinstance(refund, Mapping) and str(refund.get("order_id")) in grouped:
                grouped[str(refund.get("order_id"))].append(refund)
        if not more or not data:
            return grouped
        page += 1


# --------------------------------------------------------------------------- customers


def customer(api: ApiClient, customer_id: str) -> Mapping[str, Any] | None:
    """A customer as it is now (V3 has no single-customer GET: id:in of one), or None."""
    data, _more = v3_list(
        api, "v3/customers", {"id:in": customer_id, "include": "addresses", "limit": 1}
    )
    found = data[0] if data else None
    return found if isinstance(found, Mapping) else None


def customers_page(
    api: ApiClient, *, page: int, since: dt.datetime | None, limit: int = PAGE_SIZE
) -> tuple[list[Any], bool]:
    params: dict[str, Any] = {"page": page, "limit": limit, "include": "addresses"}
    if since is not None:
        params["date_modified:min"] = since_param(since)
    return v3_list(api, "v3/customers", params)


# --------------------------------------------------------------------------- products


PRODUCT_INCLUDE = "variants,images"


def product(api: ApiClient, product_id: str) -> Mapping[str, Any] | None:
    """A catalog product as it is now with variants and images, or None when deleted."""
    body = _one(api, f"v3/catalog/products/{product_id}", {"include": PRODUCT_INCLUDE})
    if body is None:
        return None
    data = body.get("data") if isinstance(body, Mapping) else None
    if not isinstance(data, Mapping):
        raise ConnectorError(f"GET v3/catalog/products/{product_id}: expected data")
    return data


def products_page(
    api: ApiClient, *, page: int, since: dt.datetime | None, limit: int = PAGE_SIZE
) -> tuple[list[Any], bool]:
    params: dict[str, Any] = {"page": page, "limit": limit, "include": PRODUCT_INCLUDE}
    if since is not None:
        params["date_modified:min"] = since_param(since)
    return v3_list(api, "v3/catalog/products", params)
