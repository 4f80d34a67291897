"""Paging through a shop with the REST Admin API (version 2024-10).

- Endpoints /admin/api/2024-10/{customers,products,orders}.json, authenticated with the app's
  Admin API access token in X-Shopify-Access-Token; orders with status=any (the default
  lists open orders only) and their refunds inline.
- Cursor pagination: the next page's URL comes in the Link header (rel="next"); its
  page_info parameter is the cursor, and a page_info request takes no filter but limit
  ("Make paginated requests to the REST Admin API",
  https://shopify.dev/docs/api/admin-rest/usage/pagination).
- `since` is updated_at_min on the first page (the filter travels inside page_info).
- Rate limits: a leaky bucket per app and shop; X-Shopify-Shop-Api-Call-Limit ("32/40") tells
  how full it is, 429 answers carry Retry-After in seconds ("REST Admin API rate limits",
  https://shopify.dev/docs/api/admin-rest/usage/rate-limits). We wait when the bucket is
  nearly full and honour Retry-After.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from circolo.commerce.connectors.base import ConnectorError, Page, Record
from circolo.commerce.connectors.http import ApiClient
from circolo.commerce.connectors.shopify import payloads
from circolo.commerce.schema import PayloadError

logger = logging.getLogger(__name__)

API_VERSION = "2024-10"
PAGE_LIMIT = 250
ENDPOINTS = {"customers": "customers.json", "products": "products.json", "orders": "orders.json"}
CALL_LIMIT_HEADER = "X-Shopify-Shop-Api-Call-Limit"
# The standard bucket leaks two requests a second: one second frees two places.
LEAK_WAIT_SECONDS = 1.0
# Pause before the next request when fewer places than this are left in the bucket.
CALL_LIMIT_MARGIN = 3


def endpoint(resource: str) -> str:
    try:
        return f"/admin/api/{API_VERSION}/{ENDPOINTS[resource]}"
    except KeyError:
        raise ConnectorError(f"Shopify has no resource {resource!r} to fetch") from None


def page_params(resource: str, cursor: str, since: dt.datetime | None) -> dict[str, str]:
    """Query of one page: the filters on the first, only limit and page_info after it."""
    if cursor:
        return {"limit": str(PAGE_LIMIT), "page_info": cursor}
    params = {"limit": str(PAGE_LIMIT)}
    if resource == "orders":
        params["status"] = "any"
    if since is not None:
        params["updated_at_min"] = since.astimezone(dt.UTC).isoformat(timespec="seconds")
    return params


def next_cursor(response: httpx.Response) -> str | None:
    """The page_info of the rel="next" link, or None on the last page."""
    link = response.links.get("next")
    if not link or not link.get("url"):
        return None
    values = parse_qs(urlsplit(link["url"]).query).get("page_info")
    if not values or not values[0]:
        raise ConnectorError("Shopify's next-page link has no page_info")
    return values[0]


def retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait before retrying: Retry-After, or one leak interval on a bare 429."""
    value = response.headers.get("Retry-After")
    if value is not None:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
    if response.status_code == 429:
        return LEAK_WAIT_SECONDS
    return None


def pace(client: ApiClient, response: httpx.Response) -> None:
    """Wait a moment when the call-limit header says the bucket is almost full."""
    value = response.headers.get(CALL_LIMIT_HEADER, "")
    used, _sep, size = value.partition("/")
    try:
        left = int(size) - int(used)
    except ValueError:
        return
    if left < CALL_LIMIT_MARGIN:
        client.waits.append(LEAK_WAIT_SECONDS)
        client.sleep(LEAK_WAIT_SECONDS)


def fetch_page(
    *,
    client: ApiClient,
    resource: str,
    cursor: str,
    since: dt.datetime | None,
    currency: str,
    shop_url: str,
) -> Page:
    """One page of `resource` as records. A record that does not validate is logged and
    left out: one bad row must not stop a backfill."""
    url = endpoint(resource)
    body, response = client.get_json(url, params=page_params(resource, cursor, since))
    items = body.get(resource) if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise ConnectorError(f"GET {url}: the answer has no “{resource}” list")
    records: list[Record] = []
    for item in items:
        try:
            records.append(_record(resource, item, currency=currency, shop_url=shop_url))
        except PayloadError as error:
            ident = item.get("id") if isinstance(item, dict) else None
            logger.warning("Shopify %s %s left out: %s", resource, ident, error)
    pace(client, response)
    return Page(records=tuple(records), next_cursor=next_cursor(response))


def _record(resource: str, item: Any, *, currency: str, shop_url: str) -> Record:
    if resource == "customers":
        return payloads.customer_in(item)
    if resource == "products":
        return payloads.product_in(item, currency=currency, shop_url=shop_url)
    return payloads.order_in(item, fallback_currency=currency)
