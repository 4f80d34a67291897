"""A fake Shopify for tests and benchmarks: payload builders, signed deliveries, an in-memory
shop served over HTTP in the REST Admin API's format, and a shop history that produces the
deliveries Shopify would send while it happens.

Shapes follow the REST Admin API 2024-10 resources (Customer, Product, Order, Refund) and the
webhook delivery headers (https://shopify.dev/docs/apps/build/webhooks/delivery-structure).
Everything here is plain Python: no database, no Django test machinery.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from circolo.commerce.connectors.shopify.api import API_VERSION
from circolo.commerce.connectors.shopify.signatures import signature

Signed = tuple[dict[str, str], bytes]
JSON = dict[str, Any]

# Shops answer in their own time zone: Rome in winter here, to exercise offsets.
SHOP_TZ = dt.timezone(dt.timedelta(hours=1))
T0 = dt.datetime(2026, 2, 2, 9, 0, tzinfo=dt.UTC)
CENT = Decimal("0.01")


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(SHOP_TZ).isoformat(timespec="seconds")


def money(value: Decimal | str | int) -> str:
    return str(Decimal(value).quantize(CENT))


def money_set(amount: Decimal | str, currency: str) -> JSON:
    text = money(amount)
    return {
        "shop_money": {"amount": text, "currency_code": currency},
        "presentment_money": {"amount": text, "currency_code": currency},
    }


def gid(kind: str, ident: int) -> str:
    return f"gid://shopify/{kind}/{ident}"


# --------------------------------------------------------------------------- payloads


def address(
    *, first_name: str = "Ada", last_name: str = "Rossi", city: str = "Milano", country: str = "IT"
) -> JSON:
    return {
        "first_name": first_name,
        "last_name": last_name,
        "name": f"{first_name} {last_name}",
        "company": None,
        "address1": "Via Roma 1",
        "address2": "",
        "city": city,
        "province": "Milano",
        "province_code": "MI",
        "zip": "20121",
        "country": "Italy" if country == "IT" else country,
        "country_code": country,
        "phone": None,
    }


def customer(
    ident: int,
    *,
    email: str | None,
    first_name: str = "Ada",
    last_name: str = "Rossi",
    phone: str | None = None,
    city: str = "Milano",
    country: str = "IT",
    marketing: bool = False,
    created_at: dt.datetime = T0,
    updated_at: dt.datetime | None = None,
) -> JSON:
    """A Customer resource as customers/create|update and customers.json carry it."""
    default = address(first_name=first_name, last_name=last_name, city=city, country=country)
    default.update({"id": ident * 10 + 1, "customer_id": ident, "default": True})
    return {
        "id": ident,
        "email": email,
        "created_at": iso(created_at),
        "updated_at": iso(updated_at or created_at),
        "first_name": first_name,
        "last_name": last_name,
        "orders_count": 0,
        "state": "enabled",
        "total_spent": "0.00",
        "last_order_id": None,
        "note": None,
        "verified_email": True,
        "multipass_identifier": None,
        "tax_exempt": False,
        "tags": "",
        "last_order_name": None,
        "currency": "EUR",
        "phone": phone,
        "addresses": [default],
        "email_marketing_consent": {
            "state": "subscribed" if marketing else "not_subscribed",
            "opt_in_level": "single_opt_in",
            "consent_updated_at": iso(created_at),
        },
        "sms_marketing_consent": None,
        "admin_graphql_api_id": gid("Customer", ident),
        "default_address": default,
    }


def variant(
    ident: int, *, product_id: int, sku: str, title: str = "Default Title", price: str = "10.00"
) -> JSON:
    return {
        "id": ident,
        "product_id": product_id,
        "title": title,
        "price": money(price),
        "sku": sku,
        "position": 1,
        "inventory_policy": "deny",
        "compare_at_price": None,
        "option1": title,
        "taxable": True,
        "barcode": None,
        "inventory_quantity": 10,
        "admin_graphql_api_id": gid("ProductVariant", ident),
    }


def product(
    ident: int,
    *,
    title: str,
    handle: str,
    variants: Iterable[JSON],
    status: str = "active",
    image: str | None = None,
    created_at: dt.datetime = T0,
    updated_at: dt.datetime | None = None,
) -> JSON:
    """A Product resource with its variants and images."""
    images = (
        [{"id": ident * 10, "product_id": ident, "position": 1, "src": image, "alt": title}]
        if image
        else []
    )
    return {
        "id": ident,
        "title": title,
        "body_html": f"<p>{title}</p>",
        "vendor": "Bottega Verde",
        "product_type": "Tea",
        "created_at": iso(created_at),
        "handle": handle,
        "updated_at": iso(updated_at or created_at),
        "published_at": iso(created_at),
        "template_suffix": None,
        "published_scope": "web",
        "tags": "",
        "status": status,
        "admin_graphql_api_id": gid("Product", ident),
        "variants": list(variants),
        "options": [{"id": ident, "product_id": ident, "name": "Title", "position": 1}],
        "images": images,
        "image": images[0] if images else None,
    }


def line_item(
    ident: int,
    *,
    product_id: int | None,
    variant_id: int | None,
    sku: str,
    title: str,
    quantity: int,
    price: str,
    discount: str = "0.00",
    variant_title: str | None = None,
    currency: str = "EUR",
) -> JSON:
    """An order line; `discount` is the whole discount allocated to the line."""
    allocations = (
        [
            {
                "amount": money(discount),
                "amount_set": money_set(discount, currency),
                "discount_application_index": 0,
            }
        ]
        if Decimal(discount)
        else []
    )
    return {
        "id": ident,
        "admin_graphql_api_id": gid("LineItem", ident),
        "product_id": product_id,
        "variant_id": variant_id,
        "sku": sku,
        "title": title,
        "variant_title": variant_title,
        "name": f"{title} - {variant_title}" if variant_title else title,
        "quantity": quantity,
        "current_quantity": quantity,
        "fulfillable_quantity": quantity,
        "fulfillment_status": None,
        "price": money(price),
        "price_set": money_set(price, currency),
        "total_discount": "0.00",
        "total_discount_set": money_set("0", currency),
        "discount_allocations": allocations,
        "taxable": True,
        "tax_lines": [],
        "requires_shipping": True,
        "gift_card": False,
        "vendor": "Bottega Verde",
    }


def refund(
    ident: int,
    *,
    order_id: int,
    created_at: dt.datetime,
    lines: Iterable[tuple[JSON, int, Decimal]],
    shipping: Decimal = Decimal(0),
    note: str = "",
    currency: str = "EUR",
) -> JSON:
    """A Refund resource: `lines` are (line item, quantity, merchandise subtotal); refunded
    `shipping` becomes a shipping_refund order adjustment; one successful transaction returns
    the whole amount."""
    refund_lines = []
    total = Decimal(0)
    for index, (item, quantity, subtotal) in enumerate(lines):
        total += subtotal
        refund_lines.append(
            {
                "id": ident * 100 + index,
                "line_item_id": item["id"],
                "quantity": quantity,
                "restock_type": "return",
                "location_id": 1,
                "subtotal": float(subtotal),
                "total_tax": 0.0,
                "subtotal_set": money_set(subtotal, currency),
                "total_tax_set": money_set("0", currency),
                "line_item": copy.deepcopy(item),
            }
        )
    adjustments = []
    if shipping:
        total += shipping
        adjustments.append(
            {
                "id": ident * 100 + 99,
                "order_id": order_id,
                "refund_id": ident,
                "amount": money(-shipping),
                "tax_amount": "0.00",
                "kind": "shipping_refund",
                "reason": "Shipping refund",
                "amount_set": money_set(-shipping, currency),
                "tax_amount_set": money_set("0", currency),
            }
        )
    return {
        "id": ident,
        "order_id": order_id,
        "created_at": iso(created_at),
        "processed_at": iso(created_at),
        "note": note,
        "restock": True,
        "user_id": 1,
        "admin_graphql_api_id": gid("Refund", ident),
        "duties": [],
        "refund_line_items": refund_lines,
        "order_adjustments": adjustments,
        "transactions": [
            {
                "id": ident * 10,
                "order_id": order_id,
                "kind": "refund",
                "gateway": "bogus",
                "status": "success",
                "message": "Bogus Gateway: Forced success",
                "created_at": iso(created_at),
                "processed_at": iso(created_at),
                "amount": money(total),
                "currency": currency,
                "parent_id": order_id * 10,
                "test": True,
            }
        ],
    }


def order(
    ident: int,
    *,
    number: int,
    created_at: dt.datetime,
    lines: list[JSON],
    email: str | None,
    customer: JSON | None = None,
    updated_at: dt.datetime | None = None,
    financial_status: str = "pending",
    fulfillment_status: str | None = None,
    fulfillments: Iterable[JSON] = (),
    cancelled_at: dt.datetime | None = None,
    refunds: Iterable[JSON] = (),
    discount_codes: Iterable[str] = (),
    shipping: str = "4.90",
    tax: str = "0.00",
    landing_site: str | None = "/",
    note: str | None = None,
    currency: str = "EUR",
) -> JSON:
    """An Order resource; totals are computed from the lines (prices include tax)."""
    line_total = sum((Decimal(li["price"]) * li["quantity"] for li in lines), Decimal(0))
    discounts = sum(
        (Decimal(a["amount"]) for li in lines for a in li["discount_allocations"]), Decimal(0)
    )
    total = line_total - discounts + Decimal(shipping)
    ship_to = (
        address(
            first_name=customer["first_name"] or "",
            last_name=customer["last_name"] or "",
            city=customer["default_address"]["city"],
        )
        if customer
        else address()
    )
    return {
        "id": ident,
        "admin_graphql_api_id": gid("Order", ident),
        "name": f"#{number}",
        "order_number": number,
        "number": number - 1000,
        "email": email,
        "contact_email": email,
        "phone": None,
        "created_at": iso(created_at),
        "processed_at": iso(created_at),
        "updated_at": iso(updated_at or created_at),
        "cancelled_at": iso(cancelled_at) if cancelled_at else None,
        "cancel_reason": "customer" if cancelled_at else None,
        "closed_at": None,
        "currency": currency,
        "presentment_currency": currency,
        "financial_status": financial_status,
        "fulfillment_status": fulfillment_status,
        "confirmed": True,
        "test": False,
        "taxes_included": True,
        "total_line_items_price": money(line_total),
        "total_line_items_price_set": money_set(line_total, currency),
        "total_discounts": money(discounts),
        "total_discounts_set": money_set(discounts, currency),
        "subtotal_price": money(line_total - discounts),
        "subtotal_price_set": money_set(line_total - discounts, currency),
        "total_shipping_price_set": money_set(shipping, currency),
        "total_tax": money(tax),
        "total_tax_set": money_set(tax, currency),
        "total_price": money(total),
        "total_price_set": money_set(total, currency),
        "current_total_price": money(total),
        "discount_codes": [
            {"code": code, "amount": money(discounts), "type": "percentage"}
            for code in discount_codes
        ],
        "landing_site": landing_site,
        "landing_site_ref": None,
        "referring_site": "https://www.instagram.com/" if landing_site else None,
        "source_name": "web",
        "customer_locale": "it-IT",
        "buyer_accepts_marketing": False,
        "note": note,
        "tags": "",
        "customer": copy.deepcopy(customer) if customer else None,
        "billing_address": copy.deepcopy(ship_to),
        "shipping_address": ship_to,
        "line_items": copy.deepcopy(lines),
        "shipping_lines": [
            {
                "id": ident,
                "code": "Standard",
                "title": "Standard",
                "price": money(shipping),
                "discounted_price": money(shipping),
                "price_set": money_set(shipping, currency),
                "discount_allocations": [],
            }
        ],
        "fulfillments": list(fulfillments),
        "refunds": list(refunds),
    }


def fulfillment(ident: int, *, order_id: int, created_at: dt.datetime, lines: list[JSON]) -> JSON:
    return {
        "id": ident,
        "order_id": order_id,
        "status": "success",
        "created_at": iso(created_at),
        "updated_at": iso(created_at),
        "service": "manual",
        "tracking_company": "Poste Italiane",
        "tracking_number": f"PI{ident}",
        "line_items": copy.deepcopy(lines),
        "admin_graphql_api_id": gid("Fulfillment", ident),
    }


def data_request(*, shop: str, customer_id: int, email: str, phone: str | None = None) -> JSON:
    return {
        "shop_id": 954889,
        "shop_domain": shop,
        "orders_requested": [299938, 280263],
        "customer": {"id": customer_id, "email": email, "phone": phone},
        "data_request": {"id": 9999},
    }


def customer_redact(*, shop: str, customer_id: int, email: str, phone: str | None = None) -> JSON:
    return {
        "shop_id": 954889,
        "shop_domain": shop,
        "customer": {"id": customer_id, "email": email, "phone": phone},
        "orders_to_redact": [299938, 280263],
    }


def shop_redact(*, shop: str) -> JSON:
    return {"shop_id": 954889, "shop_domain": shop}


# --------------------------------------------------------------------------- deliveries


def delivery(
    *,
    secret: str,
    topic: str,
    payload: JSON,
    shop: str,
    webhook_id: str | None = None,
    triggered_at: dt.datetime | None = None,
) -> Signed:
    """Headers and body of one delivery, signed the way Shopify signs it."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": signature(secret, body),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-API-Version": API_VERSION,
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Event-Id": str(uuid.uuid4()),
        "X-Shopify-Triggered-At": (triggered_at or T0).isoformat(),
    }
    return headers, body


def redeliver(item: Signed) -> Signed:
    """Shopify's retry of a delivery: the original payload, the same X-Shopify-Webhook-Id."""
    headers, body = item
    return dict(headers), body


def as_client_headers(headers: dict[str, str]) -> dict[str, str]:
    """The headers as keyword arguments of django.test.Client.post(headers=...)."""
    return {key: value for key, value in headers.items() if key != "Content-Type"}


# --------------------------------------------------------------------------- the API server


@dataclass
class Fault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)


class FakeShop:
    """An in-memory shop answering the REST Admin API endpoints the connector reads.

    Records are kept as full REST resources by id. `fail()` plans failing answers for
    requests after the n-th, `hang()` late ones (the work is done, the answer comes after
    the client gave up); `page_size` caps pages below Shopify's 250 so that small test
    shops still span several pages; `bucket` is what X-Shopify-Shop-Api-Call-Limit reports.
    Discounts: price rules and their codes (`price_rules`, `discount_codes`), made through
    POST price_rules.json and price_rules/<id>/discount_codes.json.
    """

    def __init__(
        self,
        *,
        domain: str = "bottega-verde.myshopify.com",
        token: str = "shpat_fake_token",  # noqa: S107 - a fake shop's fake token
        page_size: int = 250,
        bucket: int = 1,
        bucket_size: int = 40,
    ) -> None:
        self.domain = domain
        self.token = token
        self.page_size = page_size
        self.bucket = bucket
        self.bucket_size = bucket_size
        self.records: dict[str, dict[int, JSON]] = {"customers": {}, "products": {}, "orders": {}}
        self.price_rules: dict[int, JSON] = {}
        self.discount_codes: dict[int, JSON] = {}
        self.requests = 0
        self.paths: list[str] = []
        self._faults: dict[int, Fault] = {}
        self._hangs: dict[int, float] = {}
        self._next_discount_id = 507328175
        self._lock = threading.Lock()

    # ---- data
    def put(self, resource: str, record: JSON) -> None:
        with self._lock:
            self.records[resource][int(record["id"])] = copy.deepcopy(record)

    def get(self, resource: str, ident: int) -> JSON:
        return copy.deepcopy(self.records[resource][ident])

    def fail(
        self, *, after: int, times: int = 1, status: int = 500, retry_after: str | None = None
    ) -> None:
        """Answer `status` to requests number after+1 … after+times (counting from 1)."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        for number in range(after + 1, after + times + 1):
            self._faults[number] = Fault(status, headers)

    def hang(self, *, after: int, seconds: float, times: int = 1) -> None:
        """Answer requests number after+1 … after+times `seconds` late, having done their work
        (a client with a shorter timeout sees a timeout, the shop the change)."""
        for number in range(after + 1, after + times + 1):
            self._hangs[number] = seconds

    def put_discount(self, code: str, *, title: str, usage_limit: int | None = None) -> JSON:
        """A price rule with one code, as a merchant would make it in the admin."""
        with self._lock:
            rule = self._price_rule(
                {
                    "title": title,
                    "target_type": "line_item",
                    "target_selection": "all",
                    "allocation_method": "across",
                    "value_type": "percentage",
                    "value": "-10.0",
                    "customer_selection": "all",
                    "starts_at": iso(T0),
                    "usage_limit": usage_limit,
                }
            )
            self._discount_code(rule["id"], code)
            return copy.deepcopy(rule)

    def codes_of(self, rule_id: int) -> list[str]:
        return [c["code"] for c in self.discount_codes.values() if c["price_rule_id"] == rule_id]

    # ---- HTTP
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            self.requests += 1
            number = self.requests
            path = environ.get("PATH_INFO", "")
            self.paths.append(path)
            late = self._hangs.pop(number, 0.0)
        if late:
            time.sleep(late)
        with self._lock:
            status, headers, body = self._answer(environ, number)
        reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}
        reason.update({201: "Created", 204: "No Content", 303: "See Other"})
        reason.update({422: "Unprocessable Entity"})
        reason.update({429: "Too Many Requests", 500: "Internal Server Error"})
        start_response(f"{status} {reason.get(status, 'Error')}", list(headers.items()))
        return [body]

    def _answer(self, environ: dict[str, Any], number: int) -> tuple[int, dict[str, str], bytes]:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Shopify-Shop-Api-Call-Limit": f"{self.bucket}/{self.bucket_size}",
        }
        fault = self._faults.pop(number, None)
        if fault is not None:
            text = "Exceeded 2 calls per second for api client." if fault.status == 429 else ""
            return fault.status, {**headers, **fault.headers}, _json({"errors": text or "Error"})
        if environ.get("HTTP_X_SHOPIFY_ACCESS_TOKEN") != self.token:
            message = "[API] Invalid API key or access token (unrecognized login or wrong password)"
            return 401, headers, _json({"errors": message})
        prefix = f"/admin/api/{API_VERSION}/"
        path = environ.get("PATH_INFO", "")
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        if path.startswith(prefix) and _DISCOUNT_ROUTES.match(path.removeprefix(prefix)):
            status, extra, answer = self._discounts(environ, path.removeprefix(prefix), query)
            return status, {**headers, **extra}, answer
        resource = path.removeprefix(prefix).removesuffix(".json")
        if not path.startswith(prefix) or resource not in self.records:
            return 404, headers, _json({"errors": "Not Found"})
        try:
            records, cursor, previous = self._page(resource, query)
        except ValueError as error:
            return 400, headers, _json({"errors": str(error)})
        base = f"http://{environ.get('HTTP_HOST', 'localhost')}{path}"
        limit = query.get("limit", "50")
        links = []
        if previous:
            links.append(
                f'<{base}?{urlencode({"limit": limit, "page_info": previous})}>; rel="previous"'
            )
        if cursor:
            links.append(f'<{base}?{urlencode({"limit": limit, "page_info": cursor})}>; rel="next"')
        if links:
            headers["Link"] = ", ".join(links)
        return 200, headers, _json({resource: records})

    def _page(self, resource: str, query: dict[str, str]) -> tuple[list[JSON], str, str]:
        limit = int(query.get("limit", "50"))
        if not 1 <= limit <= 250:
            raise ValueError("limit - Invalid value.")
        size = min(limit, self.page_size)
        if "page_info" in query:
            extra = set(query) - {"page_info", "limit", "fields"}
            if extra:
                raise ValueError(f"page_info - Cannot be combined with {sorted(extra)}.")
            state = json.loads(base64.urlsafe_b64decode(query["page_info"].encode()))
        else:
            state = {
                "after": 0,
                "since": query.get("updated_at_min"),
                "status": query.get("status", "open"),
            }
        since = dt.datetime.fromisoformat(state["since"]) if state.get("since") else None
        chosen = []
        for ident in sorted(self.records[resource]):
            record = self.records[resource][ident]
            if ident <= state["after"]:
                continue
            if since is not None and dt.datetime.fromisoformat(record["updated_at"]) < since:
                continue
            if resource == "orders" and state["status"] == "open" and record.get("cancelled_at"):
                continue
            chosen.append(record)
            if len(chosen) > size:
                break
        page, more = chosen[:size], len(chosen) > size
        cursor = _cursor({**state, "after": page[-1]["id"]}) if more and page else ""
        previous = _cursor({**state, "after": 0}) if state["after"] else ""
        return copy.deepcopy(page), cursor, previous

    # ---- discounts (the REST Admin API's PriceRule and DiscountCode resources)
    def _discounts(
        self, environ: dict[str, Any], route: str, query: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        sent = json.loads(environ["wsgi.input"].read(length) or b"{}") if length else {}
        not_found = (404, {}, _json({"errors": "Not Found"}))
        if route == "price_rules.json" and method == "POST":
            errors = _price_rule_errors(sent.get("price_rule"))
            if errors:
                return 422, {}, _json({"errors": errors})
            return 201, {}, _json({"price_rule": self._price_rule(sent["price_rule"])})
        if match := re.fullmatch(r"price_rules/(\d+)\.json", route):
            rule_id = int(match.group(1))
            if rule_id not in self.price_rules:
                return not_found
            if method == "DELETE":
                del self.price_rules[rule_id]
                for made in list(self.discount_codes.values()):
                    if made["price_rule_id"] == rule_id:
                        del self.discount_codes[made["id"]]
                return 204, {}, b""
            return 200, {}, _json({"price_rule": self.price_rules[rule_id]})
        if match := re.fullmatch(r"price_rules/(\d+)/discount_codes\.json", route):
            rule_id = int(match.group(1))
            if rule_id not in self.price_rules:
                return not_found
            code = str((sent.get("discount_code") or {}).get("code") or "").strip()
            if not code:
                return 422, {}, _json({"errors": {"code": ["can't be blank"]}})
            if self._code_named(code) is not None:
                unique = ["must be unique. Please try a different code."]
                return 422, {}, _json({"errors": {"code": unique}})
            return 201, {}, _json({"discount_code": self._discount_code(rule_id, code)})
        if route == "discount_codes/lookup.json":
            found = self._code_named(query.get("code", ""))
            if found is None:
                return not_found
            host = environ.get("HTTP_HOST", "localhost")
            location = (
                f"http://{host}/admin/api/{API_VERSION}/price_rules/"
                f"{found['price_rule_id']}/discount_codes/{found['id']}.json"
            )
            return 303, {"Location": location}, b""
        if route == "customers/search.json":
            wanted = query.get("query", "").removeprefix("email:").strip().lower()
            found = [
                c for c in self.records["customers"].values()
                if wanted and str(c.get("email") or "").lower() == wanted
            ]  # fmt: skip
            return 200, {}, _json({"customers": copy.deepcopy(found)})
        if match := re.fullmatch(r"products/(\d+)\.json", route):
            product = self.records["products"].get(int(match.group(1)))
            if product is None:
                return not_found
            return 200, {}, _json({"product": copy.deepcopy(product)})
        return not_found

    def _price_rule(self, sent: JSON) -> JSON:
        self._next_discount_id += 1
        now = iso(T0)
        rule = {
            "id": self._next_discount_id,
            "value_type": sent["value_type"],
            "value": sent["value"],
            "customer_selection": sent["customer_selection"],
            "target_type": sent["target_type"],
            "target_selection": sent["target_selection"],
            "allocation_method": sent["allocation_method"],
            "allocation_limit": sent.get("allocation_limit"),
            "once_per_customer": bool(sent.get("once_per_customer", False)),
            "usage_limit": sent.get("usage_limit"),
            "starts_at": sent["starts_at"],
            "ends_at": sent.get("ends_at"),
            "created_at": now,
            "updated_at": now,
            "entitled_product_ids": list(sent.get("entitled_product_ids") or []),
            "entitled_variant_ids": list(sent.get("entitled_variant_ids") or []),
            "entitled_collection_ids": [],
            "entitled_country_ids": [],
            "prerequisite_product_ids": [],
            "prerequisite_variant_ids": [],
            "prerequisite_collection_ids": [],
            "customer_segment_prerequisite_ids": [],
            "prerequisite_customer_ids": list(sent.get("prerequisite_customer_ids") or []),
            "prerequisite_subtotal_range": sent.get("prerequisite_subtotal_range"),
            "prerequisite_quantity_range": None,
            "prerequisite_shipping_price_range": None,
            "prerequisite_to_entitlement_quantity_ratio": {
                "prerequisite_quantity": None,
                "entitled_quantity": None,
            },
            "prerequisite_to_entitlement_purchase": {"prerequisite_amount": None},
            "title": sent["title"],
            "admin_graphql_api_id": gid("PriceRule", self._next_discount_id),
        }
        self.price_rules[rule["id"]] = rule
        return copy.deepcopy(rule)

    def _discount_code(self, rule_id: int, code: str) -> JSON:
        self._next_discount_id += 1
        now = iso(T0)
        made = {
            "id": self._next_discount_id,
            "price_rule_id": rule_id,
            "code": code,
            "usage_count": 0,
            "created_at": now,
            "updated_at": now,
        }
        self.discount_codes[made["id"]] = made
        return copy.deepcopy(made)

    def _code_named(self, code: str) -> JSON | None:
        # Shopify's codes are case-insensitive.
        for made in self.discount_codes.values():
            if made["code"].lower() == code.strip().lower():
                return made
        return None


_DISCOUNT_ROUTES = re.compile(
    r"price_rules\.json|price_rules/\d+\.json|price_rules/\d+/discount_codes\.json"
    r"|discount_codes/lookup\.json|customers/search\.json|products/\d+\.json"
)
PRICE_RULE_REQUIRED = (
    "title", "target_type", "target_selection", "allocation_method", "value_type", "value",
    "customer_selection", "starts_at",
)  # fmt: skip


def _price_rule_errors(rule: Any) -> dict[str, list[str]]:
    """Some of Shopify's checks of a new price rule, with its messages' shape."""
    if not isinstance(rule, dict):
        return {"price_rule": ["Required parameter missing or invalid"]}
    errors = {key: ["can't be blank"] for key in PRICE_RULE_REQUIRED if rule.get(key) in (None, "")}
    if errors:
        return errors
    try:
        value = Decimal(str(rule["value"]))
    except ArithmeticError:
        return {"value": ["is not a number"]}
    if value >= 0:
        errors["value"] = ["must be less than 0"]
    if rule["value_type"] == "percentage" and value < -100:
        errors["value"] = ["must be greater than or equal to -100"]
    if rule["target_type"] == "shipping_line" and rule["allocation_method"] != "each":
        errors["allocation_method"] = ["must be each for shipping lines"]
    if rule["target_selection"] == "entitled" and not (
        rule.get("entitled_product_ids") or rule.get("entitled_variant_ids")
    ):
        errors["entitled_product_ids"] = ["can't be blank"]
    if rule["customer_selection"] == "prerequisite" and not rule.get("prerequisite_customer_ids"):
        errors["prerequisite_customer_ids"] = ["can't be blank"]
    return errors


def _cursor(state: JSON) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, sort_keys=True).encode()).decode()


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def serve(shop: FakeShop) -> Iterator[str]:
    """Serve `shop` on a free loopback port; yields its base URL (the store's api_url)."""
    server: WSGIServer = make_server("127.0.0.1", 0, shop, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --------------------------------------------------------------------------- a shop's history


FIRST_NAMES = ("Ada", "Bruno", "Chiara", "Dario", "Elena", "Fabio", "Giulia", "Luca", "Marta")
LAST_NAMES = ("Rossi", "Bianchi", "Esposito", "Romano", "Colombo", "Ricci", "Greco", "Conti")
CITIES = ("Milano", "Torino", "Bologna", "Napoli", "Firenze", "Roma")
TEAS = ("Sencha", "Darjeeling", "Rooibos", "Oolong", "Matcha", "Earl Grey", "Chai", "Assam")


@dataclass
class _Order:
    record: JSON
    paid: bool = False
    fulfilled: bool = False
    cancelled: bool = False
    # Quantity of each line not yet refunded.
    left: dict[int, int] = field(default_factory=dict)


class ShopHistory:
    """A shop living through customers, products and orders.

    Each step changes `shop` the way Shopify would and returns the (topic, payload) pairs
    Shopify sends for it, every one with a later modification time than the one before.
    The same seed gives the same history. Without a shop only the events are made.
    """

    def __init__(self, shop: FakeShop | None, *, seed: int = 1, start: dt.datetime = T0) -> None:
        self.shop = shop
        self.rng = random.Random(seed)
        self.clock = start
        self.customers: list[JSON] = []
        self.products: list[JSON] = []
        self.orders: list[_Order] = []
        self._next = {"customer": 7_000, "product": 8_000, "variant": 40_000, "order": 5_000}
        self._next.update({"line": 900_000, "refund": 60_000, "fulfillment": 70_000})
        self._number = 1000

    def _keep(self, resource: str, record: JSON) -> None:
        if self.shop is not None:
            self.shop.put(resource, record)

    def _id(self, kind: str) -> int:
        self._next[kind] += 1
        return self._next[kind]

    def tick(self) -> dt.datetime:
        self.clock += dt.timedelta(seconds=self.rng.randint(1, 300))
        return self.clock

    # ---- customers
    def customer_create(self) -> list[tuple[str, JSON]]:
        ident = self._id("customer")
        now = self.tick()
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        phone = f"+39 333 {ident:07d}" if self.rng.random() < 0.3 else None
        record = customer(
            ident,
            email=f"{first.lower()}.{last.lower()}.{ident}@example.com",
            first_name=first,
            last_name=last,
            phone=phone,
            city=self.rng.choice(CITIES),
            marketing=self.rng.random() < 0.4,
            created_at=now,
        )
        self.customers.append(record)
        self._keep("customers", record)
        return [("customers/create", record)]

    def customer_update(self) -> list[tuple[str, JSON]]:
        record = self.rng.choice(self.customers)
        now = self.tick()
        record["first_name"] = self.rng.choice(FIRST_NAMES)
        record["default_address"]["city"] = self.rng.choice(CITIES)
        state = self.rng.choice(("subscribed", "unsubscribed"))
        record["email_marketing_consent"]["state"] = state
        record["updated_at"] = iso(now)
        self._keep("customers", record)
        return [("customers/update", copy.deepcopy(record))]

    # ---- products
    def product_create(self) -> list[tuple[str, JSON]]:
        ident = self._id("product")
        now = self.tick()
        name = f"{self.rng.choice(TEAS)} {ident}"
        variants = [
            variant(
                self._id("variant"),
                product_id=ident,
                sku=f"TEA-{ident}-{size}",
                title=f"{size} g",
                price=money(Decimal(self.rng.randint(400, 3000)) / 100),
            )
            for size in (50, 100)[: self.rng.randint(1, 2)]
        ]
        record = product(
            ident,
            title=name,
            handle=name.lower().replace(" ", "-"),
            variants=variants,
            image=f"https://cdn.shopify.com/s/files/1/tea-{ident}.jpg",
            created_at=now,
        )
        self.products.append(record)
        self._keep("products", record)
        return [("products/create", record)]

    def product_update(self) -> list[tuple[str, JSON]]:
        record = self.rng.choice(self.products)
        now = self.tick()
        chosen = self.rng.choice(record["variants"])
        chosen["price"] = money(Decimal(self.rng.randint(400, 3000)) / 100)
        record["status"] = self.rng.choice(("active", "active", "active", "draft", "archived"))
        record["updated_at"] = iso(now)
        self._keep("products", record)
        return [("products/update", copy.deepcopy(record))]

    # ---- orders
    def order_create(self) -> list[tuple[str, JSON]]:
        ident = self._id("order")
        self._number += 1
        now = self.tick()
        roll = self.rng.random()
        buyer: JSON | None = None
        if roll < 0.7 and self.customers:
            buyer = self.rng.choice(self.customers)
            email = buyer["email"]
        elif roll < 0.8 and self.customers:
            email = self.rng.choice(self.customers)["email"]
        else:
            email = f"guest.{ident}@example.org"
        coded = self.rng.random() < 0.2
        lines = []
        for _n in range(self.rng.randint(1, 3)):
            tea = self.rng.choice(self.products)
            chosen = self.rng.choice(tea["variants"])
            quantity = self.rng.randint(1, 3)
            price = Decimal(chosen["price"])
            discount = (price * quantity / 10).quantize(CENT) if coded else Decimal(0)
            lines.append(
                line_item(
                    self._id("line"),
                    product_id=tea["id"],
                    variant_id=chosen["id"],
                    sku=chosen["sku"],
                    title=tea["title"],
                    variant_title=chosen["title"],
                    quantity=quantity,
                    price=str(price),
                    discount=str(discount),
                )
            )
        referral = self.rng.random()
        landing = (
            f"/?ref=friend{self.rng.randint(1, 40)}&utm_source=instagram"
            if referral < 0.25
            else "/collections/tea"
        )
        paid = self.rng.random() < 0.6
        record = order(
            ident,
            number=self._number,
            created_at=now,
            lines=lines,
            email=email,
            customer=buyer,
            financial_status="paid" if paid else "pending",
            discount_codes=("WELCOME10",) if coded else (),
            shipping="4.90" if self.rng.random() < 0.7 else "0.00",
            landing_site=landing,
        )
        state = _Order(record=record, left={li["id"]: li["quantity"] for li in lines})
        self.orders.append(state)
        self._keep("orders", record)
        events = [("orders/create", copy.deepcopy(record))]
        if paid:
            # Checkout payments: orders/paid follows orders/create.
            state.paid = True
            record["updated_at"] = iso(self.tick())
            self._keep("orders", record)
            events.append(("orders/paid", copy.deepcopy(record)))
        return events

    def _pick(self, test: Callable[[_Order], bool]) -> _Order | None:
        recent = self.orders[-60:]
        candidates = [state for state in recent if test(state)]
        return self.rng.choice(candidates) if candidates else None

    def _touch(self, state: _Order, topic: str) -> list[tuple[str, JSON]]:
        state.record["updated_at"] = iso(self.tick())
        self._keep("orders", state.record)
        return [(topic, copy.deepcopy(state.record))]

    def order_pay(self) -> list[tuple[str, JSON]]:
        state = self._pick(lambda s: not s.paid and not s.cancelled)
        if state is None:
            return []
        state.paid = True
        state.record["financial_status"] = "paid"
        return self._touch(state, "orders/paid")

    def order_update(self) -> list[tuple[str, JSON]]:
        state = self._pick(lambda s: not s.cancelled)
        if state is None:
            return []
        state.record["note"] = f"Gift wrap please ({self.rng.randint(1, 99)})"
        state.record["tags"] = self.rng.choice(("", "gift", "vip"))
        return self._touch(state, "orders/updated")

    def order_fulfil(self) -> list[tuple[str, JSON]]:
        state = self._pick(lambda s: s.paid and not s.fulfilled and not s.cancelled)
        if state is None:
            return []
        state.fulfilled = True
        now = self.tick()
        record = state.record
        record["fulfillment_status"] = "fulfilled"
        record["fulfillments"].append(
            fulfillment(
                self._id("fulfillment"), order_id=record["id"], created_at=now,
                lines=record["line_items"],
            )
        )  # fmt: skip
        return self._touch(state, "orders/fulfilled")

    def order_cancel(self) -> list[tuple[str, JSON]]:
        state = self._pick(lambda s: not s.paid and not s.cancelled)
        if state is None:
            return []
        state.cancelled = True
        record = state.record
        record["cancelled_at"] = iso(self.tick())
        record["cancel_reason"] = "customer"
        record["financial_status"] = "voided"
        return self._touch(state, "orders/cancelled")

    def order_refund(self) -> list[tuple[str, JSON]]:
        state = self._pick(lambda s: s.paid and not s.cancelled and any(s.left.values()))
        if state is None:
            return []
        record = state.record
        item = self.rng.choice([li for li in record["line_items"] if state.left[li["id"]]])
        state.left[item["id"]] -= 1
        line_discount = sum(
            (Decimal(a["amount"]) for a in item["discount_allocations"]), Decimal(0)
        )
        per_unit = Decimal(item["price"]) - line_discount / item["quantity"]
        subtotal = per_unit.quantize(CENT)
        everything = not any(state.left.values())
        shipping = Decimal(record["shipping_lines"][0]["price"]) if everything else Decimal(0)
        made = refund(
            self._id("refund"),
            order_id=record["id"],
            created_at=self.tick(),
            lines=[(item, 1, subtotal)],
            shipping=shipping,
            note=self.rng.choice(("", "Damaged in transit", "Changed mind")),
        )
        record["refunds"].append(made)
        record["financial_status"] = "refunded" if everything else "partially_refunded"
        events = [("refunds/create", copy.deepcopy(made))]
        # Shopify also sends the order, changed by the refund.
        return events + self._touch(state, "orders/updated")

    def step(self) -> list[tuple[str, JSON]]:
        if len(self.products) < 3:
            return self.product_create()
        if len(self.customers) < 3:
            return self.customer_create()
        actions: list[tuple[Callable[[], list[tuple[str, JSON]]], int]] = [
            (self.customer_create, 10),
            (self.customer_update, 4),
            (self.product_create, 2 if len(self.products) < 150 else 0),
            (self.product_update, 3),
            (self.order_create, 24),
            (self.order_pay, 8),
            (self.order_update, 6),
            (self.order_fulfil, 12),
            (self.order_cancel, 3),
            (self.order_refund, 6),
        ]
        action = self.rng.choices([a for a, _w in actions], weights=[w for _a, w in actions])[0]
        return action()

    def events(self, count: int) -> list[tuple[str, JSON]]:
        """At least `count` events (a step may make two), cut to exactly `count`."""
        out: list[tuple[str, JSON]] = []
        while len(out) < count:
            out.extend(self.step())
        return out[:count]


def history_deliveries(*, secret: str, shop: str, count: int, seed: int = 1) -> list[Signed]:
    """`count` signed deliveries of a fresh shop's history (the same for the same seed)."""
    history = ShopHistory(None, seed=seed)
    ids = random.Random(seed * 7919)
    out = []
    for topic, payload in history.events(count):
        webhook_id = str(uuid.UUID(int=ids.getrandbits(128), version=4))
        moment = dt.datetime.fromisoformat(payload.get("updated_at") or payload["created_at"])
        out.append(
            delivery(
                secret=secret,
                topic=topic,
                payload=payload,
                shop=shop,
                webhook_id=webhook_id,
                triggered_at=moment,
            )
        )
    return out
