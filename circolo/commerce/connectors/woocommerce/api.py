"""Reading a WooCommerce shop through its REST API (v3, https://woocommerce.github.io/woocommerce-rest-api-docs/).

- Endpoints /wp-json/wc/v3/customers, /products and /orders under the site address, with HTTP
  Basic authentication: consumer key as user name, consumer secret as password ("Authentication"
  > "Over HTTPS"); the site must be served over HTTPS for WooCommerce to accept it.
- Page-numbered pagination ("Pagination"): per_page up to 100, page=N; the answer says how many
  records and pages there are in X-WP-Total and X-WP-TotalPages (a Link header carries the
  next page too). We sort by id ascending (orderby=id&order=asc) so that records created during
  a walk land on later pages instead of shifting the ones not read yet.
- `since`: products and orders take modified_after (exclusive, so one second earlier is asked)
  with dates_are_gmt=true. The customers endpoint has no date filter: every page is read and
  the customers modified before `since` are left out here.
- An order lists its refunds as {id, reason, total} only; their lines and times come from
  GET /orders/<id>/refunds. A variable product lists its variations' ids only; their SKUs and
  prices come from GET /products/<id>/variations.
- WooCommerce itself does not throttle the REST API, but hosts and proxies in front of it
  answer 429 with Retry-After: ApiClient honours it.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import ssl
from collections.abc import Callable, Collection
from typing import Any

import httpx

from circolo.commerce.connectors.base import ConnectorError, Page, Record
from circolo.commerce.connectors.http import ApiClient
from circolo.commerce.connectors.woocommerce import payloads
from circolo.commerce.schema import CustomerIn, OrderIn, PayloadError, ProductIn, RefundIn

logger = logging.getLogger(__name__)

API_PREFIX = "wp-json/wc/v3"
PER_PAGE = 100
RESOURCES = ("customers", "products", "orders")
TOTAL_HEADER = "X-WP-Total"
TOTAL_PAGES_HEADER = "X-WP-TotalPages"
# Pages of refunds or variations read for one order or product before giving up.
MAX_SUB_PAGES = 50

# Which of these refund ids are already stored (they are immutable: no need to read again).
KnownRefunds = Callable[[Collection[str]], set[str]]


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Loading the CA bundle takes a tenth of a second; one context (safe to share between
    connections and threads) serves every client of the process."""
    return httpx.create_ssl_context()


def transport() -> httpx.HTTPTransport:
    """A transport for one client, on the shared TLS context: parse() makes a client for
    each delivery that needs the API."""
    return httpx.HTTPTransport(verify=_tls_context())


def endpoint(resource: str) -> str:
    if resource not in RESOURCES:
        raise ConnectorError(f"WooCommerce has no resource {resource!r} to fetch")
    return f"{API_PREFIX}/{resource}"


def page_number(cursor: str) -> int:
    if not cursor:
        return 1
    if not cursor.isdecimal() or int(cursor) < 1:
        raise ConnectorError(f"“{cursor}” is not a WooCommerce page number")
    return int(cursor)


def page_params(resource: str, page: int, since: dt.datetime | None) -> dict[str, str]:
    params = {"per_page": str(PER_PAGE), "page": str(page), "orderby": "id", "order": "asc"}
    if resource == "orders":
        params["status"] = "any"
    if since is not None and resource != "customers":
        # modified_after is exclusive: ask from one second earlier to include `since` itself.
        moment = since.astimezone(dt.UTC) - dt.timedelta(seconds=1)
        params["modified_after"] = moment.replace(tzinfo=None).isoformat(timespec="seconds")
        params["dates_are_gmt"] = "true"
    return params


def total_pages(response: httpx.Response) -> int | None:
    value = response.headers.get(TOTAL_PAGES_HEADER, "").strip()
    return int(value) if value.isdecimal() else None


def next_cursor(page: int, response: httpx.Response, count: int) -> str | None:
    """The next page number, or None after the last page. Without X-WP-TotalPages (a proxy
    that drops headers), a full page means there may be more."""
    pages = total_pages(response)
    more = page < pages if pages is not None else count >= PER_PAGE
    return str(page + 1) if more and count else None


def collection(client: ApiClient, path: str, params: dict[str, str]) -> tuple[list[Any], Any]:
    body, response = client.get_json(path, params=params)
    if not isinstance(body, list):
        raise ConnectorError(f"GET {path}: the answer is not a list")
    return body, response


def _all_pages(client: ApiClient, path: str) -> list[Any]:
    """Every record of a small collection (an order's refunds, a product's variations)."""
    out: list[Any] = []
    for page in range(1, MAX_SUB_PAGES + 1):
        params = {"per_page": str(PER_PAGE), "page": str(page)}
        items, response = collection(client, path, params)
        out.extend(items)
        if next_cursor(page, response, len(items)) is None:
            return out
    raise ConnectorError(f"GET {path}: more than {MAX_SUB_PAGES} pages")


def order_refunds(
    client: ApiClient, *, order: Any, currency: str, wanted: Collection[str]
) -> tuple[RefundIn, ...]:
    """The refunds of `order` whose ids are in `wanted`, read from /orders/<id>/refunds.

    A refund the order listed but the API no longer has (deleted since) is left out.
    """
    if not wanted:
        return ()
    order_id = payloads.resource_id(order, "order")
    by_product = payloads.lines_by_product(order)
    path = f"{API_PREFIX}/orders/{order_id}/refunds"
    found: dict[str, RefundIn] = {}
    for index, item in enumerate(_all_pages(client, path)):
        record = payloads.refund_in(
            item,
            order_id=order_id,
            currency=currency,
            lines_by_product=by_product,
            field=f"refunds[{index}]",
        )
        if record.external_id in wanted:
            found[record.external_id] = record
    for missing in sorted(set(wanted) - set(found)):
        logger.info("WooCommerce order %s: refund %s is gone, left out", order_id, missing)
    return tuple(found[ident] for ident in wanted if ident in found)


def product_variations(client: ApiClient, product_id: str) -> list[Any]:
    return _all_pages(client, f"{API_PREFIX}/products/{product_id}/variations")


def product(client: ApiClient, product_id: str) -> Any:
    body, _response = client.get_json(f"{API_PREFIX}/products/{product_id}")
    if not isinstance(body, dict):
        raise ConnectorError(f"GET products/{product_id}: the answer is not a product")
    return body


def product_record(client: ApiClient, item: Any, *, currency: str) -> ProductIn:
    """A product with its variants (read from the API for a variable product)."""
    variations: list[Any] = []
    if payloads.product_type(item) in payloads.VARIABLE_TYPES:
        variations = product_variations(client, payloads.resource_id(item, "product"))
    return payloads.product_in(item, currency=currency, variations=variations)


def order_record(
    client: ApiClient, item: Any, *, currency: str, known_refunds: KnownRefunds
) -> OrderIn:
    """An order with the refunds it lists that are not stored yet (read from the API)."""
    ids = payloads.refund_ids(item)
    known = known_refunds(ids) if ids else set()
    wanted = [ident for ident in ids if ident not in known]
    own_currency = payloads.order_currency(item, fallback=currency)
    refunds = order_refunds(client, order=item, currency=own_currency, wanted=wanted)
    return payloads.order_in(item, fallback_currency=currency, refunds=refunds)


def _modified_since(record: Record, since: dt.datetime | None) -> bool:
    """The customers endpoint cannot filter by date: keep those modified at or after `since`
    (products and orders were filtered by the API)."""
    if since is None or not isinstance(record, CustomerIn):
        return True
    moment = record.updated_at or record.created_at
    return moment is None or moment >= since


def fetch_page(
    *,
    client: ApiClient,
    resource: str,
    cursor: str,
    since: dt.datetime | None,
    currency: str,
    known_refunds: KnownRefunds,
) -> Page:
    """One page of `resource` as records. A record that does not validate is logged and left
    out: one bad record must not stop a backfill."""
    path = endpoint(resource)
    page = page_number(cursor)
    items, response = collection(client, path, page_params(resource, page, since))
    records: list[Record] = []
    for item in items:
        try:
            record = _record(client, resource, item, currency, known_refunds)
        except PayloadError as error:
            ident = item.get("id") if isinstance(item, dict) else None
            logger.warning("WooCommerce %s %s left out: %s", resource, ident, error)
            continue
        if record is not None and _modified_since(record, since):
            records.append(record)
    return Page(records=tuple(records), next_cursor=next_cursor(page, response, len(items)))


def _record(
    client: ApiClient, resource: str, item: Any, currency: str, known_refunds: KnownRefunds
) -> Record | None:
    if resource == "customers":
        return payloads.customer_in(item)
    if resource == "products":
        if payloads.is_variation(item):
            return None
        return product_record(client, item, currency=currency)
    return order_record(client, item, currency=currency, known_refunds=known_refunds)
