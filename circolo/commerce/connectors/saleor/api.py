"""Paging through a Saleor shop with its GraphQL API.

- One endpoint (the store's API address, e.g. https://shop.example/graphql/), POST with
  {"query", "variables"}, authenticated by an app token: "Authorization: Bearer <token>"
  ("Authentication and Authorization", https://docs.saleor.io/api-usage/authentication).
  The app needs MANAGE_USERS, MANAGE_PRODUCTS and MANAGE_ORDERS to read customers,
  unpublished products and orders.
- Relay cursor pagination: `first` (at most 100) and `after`; the next cursor is
  pageInfo.endCursor while pageInfo.hasNextPage (https://docs.saleor.io/api-usage/pagination).
- `since` is the filter {updatedAt: {gte: ...}} of the customers, products and orders queries.
- GraphQL reports failures in an "errors" list, usually with HTTP 200: any error fails the
  page with Saleor's message (a missing permission must not silently drop fields).
  Throttling and outages (429, 5xx) are retried by ApiClient, honouring Retry-After.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from circolo.commerce.connectors.base import ConnectorError, Page, Record
from circolo.commerce.connectors.http import ApiClient
from circolo.commerce.connectors.saleor import payloads
from circolo.commerce.connectors.saleor.documents import QUERIES
from circolo.commerce.schema import PayloadError

logger = logging.getLogger(__name__)

# Saleor's largest page ("first" is capped at 100 objects per query).
PAGE_SIZE = 100
CURSOR_MAX_LENGTH = 500


def page_variables(cursor: str, since: dt.datetime | None) -> dict[str, Any]:
    variables: dict[str, Any] = {"first": PAGE_SIZE, "after": cursor or None}
    if since is not None:
        gte = since.astimezone(dt.UTC).isoformat()
        variables["filter"] = {"updatedAt": {"gte": gte}}
    return variables


def graphql(client: ApiClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """The `data` of a GraphQL answer; ConnectorError naming Saleor's first error."""
    body, _response = client.post_json("", {"query": query, "variables": variables})
    if not isinstance(body, dict):
        raise ConnectorError("Saleor's answer is not a GraphQL response")
    errors = body.get("errors")
    if errors:
        first = errors[0] if isinstance(errors, list) and errors else errors
        message = first.get("message") if isinstance(first, dict) else first
        raise ConnectorError(f"Saleor answered with an error: {str(message)[:300]}")
    data = body.get("data")
    if not isinstance(data, dict):
        raise ConnectorError("Saleor's answer has no data")
    return data


def fetch_page(
    *, client: ApiClient, resource: str, cursor: str, since: dt.datetime | None, currency: str
) -> Page:
    """One page of `resource` as records. A record that does not validate is logged and
    left out: one bad record must not stop a backfill."""
    try:
        query = QUERIES[resource]
    except KeyError:
        raise ConnectorError(f"Saleor has no resource {resource!r} to fetch") from None
    data = graphql(client, query, page_variables(cursor, since))
    connection = data.get(resource)
    if not isinstance(connection, dict) or not isinstance(connection.get("edges"), list):
        raise ConnectorError(f"Saleor's answer has no {resource} list")
    records: list[Record] = []
    for edge in connection["edges"]:
        node = edge.get("node") if isinstance(edge, dict) else None
        try:
            records.append(_record(resource, node, currency=currency))
        except PayloadError as error:
            ident = node.get("id") if isinstance(node, dict) else None
            logger.warning("Saleor %s %s left out: %s", resource, ident, error)
    return Page(records=tuple(records), next_cursor=_next_cursor(connection))


def _next_cursor(connection: dict[str, Any]) -> str | None:
    info = connection.get("pageInfo")
    if not isinstance(info, dict):
        raise ConnectorError("Saleor's answer has no pageInfo")
    if info.get("hasNextPage") is not True:
        return None
    cursor = info.get("endCursor")
    if not isinstance(cursor, str) or not cursor or len(cursor) > CURSOR_MAX_LENGTH:
        raise ConnectorError("Saleor says there is a next page but gives no usable endCursor")
    return cursor


def _record(resource: str, node: Any, *, currency: str) -> Record:
    if resource == "customers":
        return payloads.customer_in(node)
    if resource == "products":
        return payloads.product_in(node, currency=currency)
    return payloads.order_in(node)
