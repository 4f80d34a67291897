"""A fake WooCommerce for tests and benchmarks: payload builders, signed deliveries and pings,
an in-memory shop served over HTTP in the REST API v3's format, and a shop history that
produces the deliveries WooCommerce would send while it happens.

Shapes follow the REST API v3 reference (customers, products, product variations, orders,
order refunds) and WC_Webhook::deliver() / deliver_ping() for headers and bodies: JSON encoded
as PHP's json_encode does it (no spaces, "\\/" for "/"), dates twice, in the site's time zone
and as GMT, both without an offset. Everything here is plain Python: no database, no Django.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import parse_qs, urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from circolo.commerce.connectors.woocommerce.signatures import signature

Signed = tuple[dict[str, str], bytes]
JSON = dict[str, Any]

# The site's time zone: Rome in winter, so that local and GMT dates differ.
SITE_TZ = dt.timezone(dt.timedelta(hours=1))
SITE = "https://bottega.example/"
T0 = dt.datetime(2026, 2, 2, 9, 0, tzinfo=dt.UTC)
CENT = Decimal("0.01")
USER_AGENT = "WooCommerce/9.8.0 Hookshot (WordPress/6.8)"
CONSUMER_KEY = "ck_4f1d2b0a9c8e7d6f5a4b3c2d1e0f9a8b7c6d5e4f"
CONSUMER_SECRET = "cs_0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b"


def gmt(moment: dt.datetime | None) -> str | None:
    """A *_gmt field: GMT, no offset, whole seconds."""
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def local(moment: dt.datetime | None) -> str | None:
    """The site-time twin of a *_gmt field (no offset either)."""
    if moment is None:
        return None
    return moment.astimezone(SITE_TZ).replace(tzinfo=None).isoformat(timespec="seconds")


def dates(name: str, moment: dt.datetime | None) -> JSON:
    return {name: local(moment), f"{name}_gmt": gmt(moment)}


def money(value: Decimal | str | int) -> str:
    return str(Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP))


def wc_json(value: Any) -> bytes:
    """JSON as wp_json_encode() writes it: compact, ASCII, slashes escaped."""
    return json.dumps(value, separators=(",", ":")).replace("/", "\\/").encode()


def _md5(text: str) -> str:
    """WordPress's hashes (order keys, cart hashes, wp_hash) are MD5 hex digests."""
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def links(path: str, *, up: str | None = None) -> JSON:
    out: JSON = {
        "self": [{"href": f"{SITE}wp-json/wc/v3/{path}"}],
        "collection": [{"href": f"{SITE}wp-json/wc/v3/{path.rsplit('/', 1)[0]}"}],
    }
    if up:
        out["up"] = [{"href": f"{SITE}wp-json/wc/v3/{up}"}]
    return out


# --------------------------------------------------------------------------- payloads


def address(
    *,
    first_name: str = "Ada",
    last_name: str = "Rossi",
    city: str = "Milano",
    country: str = "IT",
    email: str | None = None,
    phone: str | None = None,
) -> JSON:
    """A billing address (with email and phone) or, without them, a shipping address."""
    out: JSON = {
        "first_name": first_name,
        "last_name": last_name,
        "company": "",
        "address_1": "Via Roma 1",
        "address_2": "",
        "city": city,
        "state": "MI",
        "postcode": "20121",
        "country": country,
    }
    if email is not None:
        out["email"] = email
    if phone is not None:
        out["phone"] = phone
    return out


def customer(
    ident: int,
    *,
    email: str,
    first_name: str = "Ada",
    last_name: str = "Rossi",
    phone: str = "",
    city: str = "Milano",
    country: str = "IT",
    created_at: dt.datetime = T0,
    modified_at: dt.datetime | None = None,
    role: str = "customer",
) -> JSON:
    """A Customer resource as customer.created|updated and /customers carry it."""
    billing = address(
        first_name=first_name,
        last_name=last_name,
        city=city,
        country=country,
        email=email,
        phone=phone,
    )
    return {
        "id": ident,
        **dates("date_created", created_at),
        **dates("date_modified", modified_at or created_at),
        "email": email,
        "first_name": first_name,
        "last_name": last_name,
        "role": role,
        "username": email.split("@")[0],
        "billing": billing,
        "shipping": address(first_name=first_name, last_name=last_name, city=city),
        "is_paying_customer": False,
        "avatar_url": "https://secure.gravatar.com/avatar/0?s=96&d=mm&r=g",
        "meta_data": [],
        "_links": links(f"customers/{ident}"),
    }


def product(
    ident: int,
    *,
    name: str,
    sku: str = "",
    price: str = "10.00",
    kind: str = "simple",
    status: str = "publish",
    variations: Iterable[int] = (),
    image: str | None = None,
    created_at: dt.datetime = T0,
    modified_at: dt.datetime | None = None,
) -> JSON:
    """A Product resource; a variable product lists its variations by id only."""
    slug = name.lower().replace(" ", "-")
    images = (
        [
            {
                "id": ident * 10,
                **dates("date_created", created_at),
                **dates("date_modified", created_at),
                "src": image,
                "name": slug,
                "alt": "",
            }
        ]
        if image
        else []
    )
    return {
        "id": ident,
        "name": name,
        "slug": slug,
        "permalink": f"{SITE}product/{slug}/",
        **dates("date_created", created_at),
        **dates("date_modified", modified_at or created_at),
        "type": kind,
        "status": status,
        "featured": False,
        "catalog_visibility": "visible",
        "description": f"<p>{name}</p>",
        "short_description": "",
        "sku": sku,
        "price": money(price) if price else "",
        "regular_price": money(price) if price else "",
        "sale_price": "",
        "on_sale": False,
        "purchasable": True,
        "total_sales": 0,
        "virtual": False,
        "downloadable": False,
        "tax_status": "taxable",
        "tax_class": "",
        "manage_stock": False,
        "stock_quantity": None,
        "stock_status": "instock",
        "parent_id": 0,
        "categories": [{"id": 15, "name": "Tea", "slug": "tea"}],
        "tags": [],
        "images": images,
        "attributes": [],
        "variations": list(variations),
        "grouped_products": [],
        "menu_order": 0,
        "meta_data": [],
        "_links": links(f"products/{ident}"),
    }


def variation(
    ident: int,
    *,
    parent_id: int,
    sku: str,
    price: str,
    option: str,
    created_at: dt.datetime = T0,
    modified_at: dt.datetime | None = None,
) -> JSON:
    """A product variation as /products/<id>/variations lists it."""
    return {
        "id": ident,
        **dates("date_created", created_at),
        **dates("date_modified", modified_at or created_at),
        "description": "",
        "permalink": f"{SITE}product/tea-{parent_id}/?attribute_pa_size={option}",
        "sku": sku,
        "price": money(price),
        "regular_price": money(price),
        "sale_price": "",
        "on_sale": False,
        "status": "publish",
        "purchasable": True,
        "virtual": False,
        "downloadable": False,
        "tax_status": "taxable",
        "tax_class": "",
        "manage_stock": False,
        "stock_quantity": None,
        "stock_status": "instock",
        "image": None,
        "attributes": [{"id": 1, "name": "Size", "option": option}],
        "menu_order": 0,
        "meta_data": [],
        "_links": links(f"products/{parent_id}/variations/{ident}", up=f"products/{parent_id}"),
    }


def variation_as_product(record: JSON, *, name: str) -> JSON:
    """A variation read through /products/<id> (what a variation's product.updated carries)."""
    parent_id = int(record["_links"]["up"][0]["href"].rsplit("/", 1)[1])
    out = product(
        record["id"],
        name=f"{name} - {record['attributes'][0]['option']}",
        sku=record["sku"],
        price=record["price"],
        kind="variation",
    )
    for key in ("date_created", "date_created_gmt", "date_modified", "date_modified_gmt"):
        out[key] = record[key]
    out["parent_id"] = parent_id
    out["permalink"] = record["permalink"]
    return out


def line_item(
    ident: int,
    *,
    product_id: int,
    variation_id: int = 0,
    name: str,
    sku: str,
    quantity: int,
    price: Decimal | str,
    discount: Decimal | str = "0",
    tax_rate: Decimal | str = "0",
) -> JSON:
    """An order line: subtotal before discounts, total after them, both before tax."""
    subtotal = Decimal(price) * quantity
    total = subtotal - Decimal(discount)
    rate = Decimal(tax_rate)
    subtotal_tax, total_tax = subtotal * rate, total * rate
    taxes = [{"id": 1, "total": money(total_tax), "subtotal": money(subtotal_tax)}] if rate else []
    return {
        "id": ident,
        "name": name,
        "product_id": product_id,
        "variation_id": variation_id,
        "quantity": quantity,
        "tax_class": "",
        "subtotal": money(subtotal),
        "subtotal_tax": money(subtotal_tax),
        "total": money(total),
        "total_tax": money(total_tax),
        "taxes": taxes,
        "meta_data": [],
        "sku": sku,
        "price": float(total / quantity) if quantity else 0,
        "image": {"id": 0, "src": ""},
        "parent_name": None,
    }


def order(
    ident: int,
    *,
    created_at: dt.datetime,
    lines: list[JSON],
    billing: JSON,
    shipping: JSON | None = None,
    customer_id: int = 0,
    status: str = "pending",
    modified_at: dt.datetime | None = None,
    paid_at: dt.datetime | None = None,
    completed_at: dt.datetime | None = None,
    coupons: Iterable[str] = (),
    shipping_total: str = "0.00",
    refunds: Iterable[JSON] = (),
    landing_page: str | None = None,
    note: str = "",
    currency: str = "EUR",
) -> JSON:
    """An Order resource; totals are computed from the lines; `refunds` are summaries."""
    subtotal = sum((Decimal(li["subtotal"]) for li in lines), Decimal(0))
    line_total = sum((Decimal(li["total"]) for li in lines), Decimal(0))
    tax = sum((Decimal(li["total_tax"]) for li in lines), Decimal(0))
    discount = subtotal - line_total
    total = line_total + tax + Decimal(shipping_total)
    meta = [{"id": ident * 10, "key": "is_vat_exempt", "value": "no"}]
    if landing_page:
        meta.append(
            {"id": ident * 10 + 1, "key": "_wc_order_attribution_source_type", "value": "referral"}
        )
        meta.append(
            {
                "id": ident * 10 + 2,
                "key": "_wc_order_attribution_session_entry",
                "value": landing_page,
            }
        )
    return {
        "id": ident,
        "parent_id": 0,
        "status": status,
        "currency": currency,
        "version": "9.8.0",
        "prices_include_tax": False,
        **dates("date_created", created_at),
        **dates("date_modified", modified_at or created_at),
        "discount_total": money(discount),
        "discount_tax": "0.00",
        "shipping_total": money(shipping_total),
        "shipping_tax": "0.00",
        "cart_tax": money(tax),
        "total": money(total),
        "total_tax": money(tax),
        "customer_id": customer_id,
        "order_key": f"wc_order_{_md5(str(ident))[:13]}",
        "billing": copy.deepcopy(billing),
        "shipping": copy.deepcopy(
            shipping or {k: v for k, v in billing.items() if k not in ("email", "phone")}
        ),
        "payment_method": "stripe",
        "payment_method_title": "Credit card",
        "transaction_id": f"pi_{ident}" if paid_at else "",
        "customer_ip_address": "203.0.113.7",
        "customer_user_agent": "Mozilla/5.0",
        "created_via": "checkout",
        "customer_note": note,
        **dates("date_completed", completed_at),
        **dates("date_paid", paid_at),
        "cart_hash": _md5(str(lines)),
        "number": str(ident),
        "meta_data": meta,
        "line_items": copy.deepcopy(lines),
        "tax_lines": [],
        "shipping_lines": [
            {
                "id": ident * 100 + 99,
                "method_title": "Flat rate",
                "method_id": "flat_rate",
                "instance_id": "1",
                "total": money(shipping_total),
                "total_tax": "0.00",
                "taxes": [],
                "meta_data": [],
            }
        ],
        "fee_lines": [],
        "coupon_lines": [
            {
                "id": ident * 100 + 98 - index,
                "code": code,
                "discount": money(discount),
                "discount_tax": "0.00",
                "meta_data": [],
            }
            for index, code in enumerate(coupons)
        ],
        "refunds": list(refunds),
        "payment_url": f"{SITE}checkout/order-pay/{ident}/",
        "is_editable": status in ("pending", "on-hold"),
        "needs_payment": status in ("pending", "failed"),
        "needs_processing": True,
        "currency_symbol": "€",
        "_links": links(f"orders/{ident}"),
    }


def refund(
    ident: int,
    *,
    order_id: int,
    created_at: dt.datetime,
    lines: Iterable[tuple[JSON, int, Decimal]],
    extra: Decimal = Decimal(0),
    reason: str = "",
) -> JSON:
    """An order refund (GET /orders/<id>/refunds): `lines` are (order line, quantity,
    amount before tax) and come out negative with _refunded_item_id naming the order line;
    `extra` is money returned beyond the lines (refunded shipping)."""
    items = []
    amount = extra
    for index, (item, quantity, value) in enumerate(lines):
        amount += value
        items.append(
            {
                "id": ident * 100 + index,
                "name": item["name"],
                "product_id": item["product_id"],
                "variation_id": item["variation_id"],
                "quantity": -quantity,
                "tax_class": "",
                "subtotal": money(-value),
                "subtotal_tax": "0.00",
                "total": money(-value),
                "total_tax": "0.00",
                "taxes": [],
                "meta_data": [
                    {
                        "id": ident * 100 + index,
                        "key": "_refunded_item_id",
                        "value": str(item["id"]),
                    }
                ],
                "sku": item["sku"],
                "price": float(-value / quantity) if quantity else 0,
            }
        )
    return {
        "id": ident,
        **dates("date_created", created_at),
        "amount": money(amount),
        "reason": reason,
        "refunded_by": 1,
        "refunded_payment": True,
        "meta_data": [],
        "line_items": items,
        "shipping_lines": [],
        "tax_lines": [],
        "fee_lines": [],
        "_links": links(f"orders/{order_id}/refunds/{ident}", up=f"orders/{order_id}"),
    }


def refund_summary(record: JSON) -> JSON:
    """How an order lists one of its refunds."""
    return {"id": record["id"], "reason": record["reason"], "total": f"-{record['amount']}"}


# --------------------------------------------------------------------------- deliveries


def delivery_id(rng: random.Random | None = None) -> str:
    """A delivery id as WooCommerce makes one: wp_hash() of the webhook id and the time."""
    bits = (rng or random.Random()).getrandbits(128)
    return _md5(str(bits))


def delivery(
    *,
    secret: str,
    topic: str,
    payload: JSON,
    source: str = SITE,
    webhook_id: int = 1,
    delivery: str | None = None,
) -> Signed:
    """Headers and body of one delivery, signed the way WooCommerce signs it."""
    body = wc_json(payload)
    resource, _sep, event = topic.partition(".")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-WC-Webhook-Source": source,
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-Signature": signature(secret, body),
        "X-WC-Webhook-ID": str(webhook_id),
        "X-WC-Webhook-Delivery-ID": delivery or delivery_id(),
    }
    return headers, body


def ping(webhook_id: int = 1) -> Signed:
    """The ping WooCommerce sends when a webhook is saved: a form body, no signature."""
    headers = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": USER_AGENT}
    return headers, f"webhook_id={webhook_id}".encode()


def redeliver(item: Signed, rng: random.Random | None = None) -> Signed:
    """WooCommerce sending the same resource state again: the same body and signature, a new
    X-WC-Webhook-Delivery-ID (it is made anew for every send)."""
    headers, body = item
    return {**headers, "X-WC-Webhook-Delivery-ID": delivery_id(rng)}, body


def as_client_headers(headers: dict[str, str]) -> dict[str, str]:
    """The headers as keyword arguments of django.test.Client.post(headers=...)."""
    return {key: value for key, value in headers.items() if key != "Content-Type"}


# --------------------------------------------------------------------------- the API server


@dataclass
class Fault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)


_ITEM = re.compile(r"^/wp-json/wc/v3/(products|orders)/([0-9]+)(?:/(variations|refunds))?/?$")
_LIST = re.compile(r"^/wp-json/wc/v3/(customers|products|orders)/?$")
_COUPONS = re.compile(r"^/wp-json/wc/v3/coupons/?$")
COUPON_TYPES = ("percent", "fixed_cart", "fixed_product")
REASONS = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class FakeShop:
    """An in-memory WooCommerce site answering the REST API v3 endpoints the connector reads.

    Records are kept as full REST resources by id: customers, products (parents), variations
    per product, orders, refunds per order. `fail()` plans failing answers for requests after
    the n-th, `hang()` late ones (the work is done, the answer comes after the client gave
    up); `page_cap` caps pages below the asked per_page so that small test shops span
    several pages. Coupons (`coupons`) are made through POST /coupons.
    """

    def __init__(
        self,
        *,
        key: str = CONSUMER_KEY,
        secret: str = CONSUMER_SECRET,
        page_cap: int = 100,
    ) -> None:
        self.key = key
        self.secret = secret
        self.page_cap = page_cap
        self.records: dict[str, dict[int, JSON]] = {"customers": {}, "products": {}, "orders": {}}
        self.variations: dict[int, dict[int, JSON]] = {}
        self.refunds: dict[int, dict[int, JSON]] = {}
        self.coupons: dict[int, JSON] = {}
        self.requests = 0
        self.paths: list[str] = []
        self._faults: dict[int, Fault] = {}
        self._hangs: dict[int, float] = {}
        self._next_coupon_id = 900
        self._lock = threading.Lock()

    # ---- data
    def put(self, resource: str, record: JSON) -> None:
        with self._lock:
            self.records[resource][int(record["id"])] = copy.deepcopy(record)

    def put_variation(self, parent_id: int, record: JSON) -> None:
        with self._lock:
            self.variations.setdefault(parent_id, {})[int(record["id"])] = copy.deepcopy(record)

    def put_refund(self, order_id: int, record: JSON) -> None:
        with self._lock:
            self.refunds.setdefault(order_id, {})[int(record["id"])] = copy.deepcopy(record)

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

    def put_coupon(
        self, code: str, *, description: str = "", usage_limit: int | None = None
    ) -> JSON:
        """A coupon as a shop manager would make it in wp-admin."""
        with self._lock:
            return self._coupon_make(
                {"code": code, "description": description, "usage_limit": usage_limit}
            )

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
        start_response(f"{status} {REASONS.get(status, 'Error')}", list(headers.items()))
        return [body]

    def _authorised(self, environ: dict[str, Any]) -> bool:
        scheme, _sep, value = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _sep, password = base64.b64decode(value).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return user == self.key and password == self.secret

    def _answer(self, environ: dict[str, Any], number: int) -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": "application/json; charset=UTF-8"}
        fault = self._faults.pop(number, None)
        if fault is not None:
            return (
                fault.status,
                {**headers, **fault.headers},
                wc_json(_error("woocommerce_rest_error", "Error", fault.status)),
            )
        if not self._authorised(environ):
            return (
                401,
                headers,
                wc_json(
                    _error("woocommerce_rest_cannot_view", "Sorry, you cannot list resources.", 401)
                ),
            )
        path = environ.get("PATH_INFO", "")
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        if _COUPONS.match(path):
            status, answer = self._coupons(environ, query)
            return status, headers, wc_json(answer)
        try:
            per_page = int(query.get("per_page", "10"))
            page = int(query.get("page", "1"))
        except ValueError:
            return 400, headers, wc_json(_error("rest_invalid_param", "Invalid parameter(s)", 400))
        if not 1 <= per_page <= 100 or page < 1:
            message = "Invalid parameter(s): per_page"
            return 400, headers, wc_json(_error("rest_invalid_param", message, 400))
        listed = _LIST.match(path)
        item = _ITEM.match(path)
        if listed:
            rows = self._filtered(listed.group(1), query)
        elif item and item.group(3) == "variations":
            rows = list(self.variations.get(int(item.group(2)), {}).values())
        elif item and item.group(3) == "refunds":
            rows = sorted(
                self.refunds.get(int(item.group(2)), {}).values(), key=lambda r: -int(r["id"])
            )
        elif item:
            found = self._one(item.group(1), int(item.group(2)))
            if found is None:
                return (
                    404,
                    headers,
                    wc_json(_error("woocommerce_rest_invalid_id", "Invalid ID.", 404)),
                )
            return 200, headers, wc_json(found)
        else:
            return (
                404,
                headers,
                wc_json(
                    _error(
                        "rest_no_route",
                        "No route was found matching the URL and request method.",
                        404,
                    )
                ),
            )
        size = min(per_page, self.page_cap)
        pages = max(1, -(-len(rows) // size)) if rows else 0
        chosen = rows[(page - 1) * size : page * size]
        headers["X-WP-Total"] = str(len(rows))
        headers["X-WP-TotalPages"] = str(pages)
        base = f"http://{environ.get('HTTP_HOST', 'localhost')}{path}"
        link = []
        if page > 1:
            link.append(f'<{base}?{urlencode({**query, "page": page - 1})}>; rel="prev"')
        if page < pages:
            link.append(f'<{base}?{urlencode({**query, "page": page + 1})}>; rel="next"')
        if link:
            headers["Link"] = ", ".join(link)
        return 200, headers, wc_json(copy.deepcopy(chosen))

    def _one(self, resource: str, ident: int) -> JSON | None:
        if ident in self.records[resource]:
            return copy.deepcopy(self.records[resource][ident])
        if resource == "products":
            for parent_id, found in self.variations.items():
                if ident in found:
                    name = self.records["products"][parent_id]["name"]
                    return variation_as_product(found[ident], name=name)
        return None

    def _filtered(self, resource: str, query: dict[str, str]) -> list[JSON]:
        rows = list(self.records[resource].values())
        since = query.get("modified_after")
        if since and resource != "customers":
            column = (
                "date_modified_gmt" if query.get("dates_are_gmt") == "true" else "date_modified"
            )
            bound = dt.datetime.fromisoformat(since).replace(tzinfo=None)
            rows = [r for r in rows if dt.datetime.fromisoformat(r[column]) > bound]
        if resource == "orders":
            wanted = query.get("status", "any")
            rows = [r for r in rows if r["status"] != "trash" and wanted in ("any", r["status"])]
        if resource == "customers":
            role = query.get("role", "customer")
            rows = [r for r in rows if role == "all" or r["role"] == role]
        order_by = query.get("orderby", "date")
        if order_by == "id":
            rows.sort(key=lambda r: int(r["id"]))
        else:
            rows.sort(key=lambda r: (r["date_created_gmt"], int(r["id"])))
        if query.get("order", "asc" if resource == "customers" else "desc") == "desc":
            rows.reverse()
        return rows

    # ---- coupons (WC_REST_Coupons_Controller)
    def _coupons(self, environ: dict[str, Any], query: dict[str, str]) -> tuple[int, Any]:
        if environ.get("REQUEST_METHOD", "GET") != "POST":
            wanted = query.get("code", "").strip().lower()
            rows = [c for c in self.coupons.values() if not wanted or c["code"] == wanted]
            return 200, copy.deepcopy(sorted(rows, key=lambda c: -int(c["id"])))
        length = int(environ.get("CONTENT_LENGTH") or 0)
        try:
            sent = json.loads(environ["wsgi.input"].read(length) or b"{}")
        except ValueError:
            return 400, _error("rest_invalid_json", "Invalid JSON body passed.", 400)
        code = str(sent.get("code") or "").strip().lower()
        if not code:
            return 400, _error(
                "woocommerce_rest_empty_coupon_code", "The coupon code cannot be empty.", 400
            )
        if sent.get("discount_type", "fixed_cart") not in COUPON_TYPES:
            message = "Invalid parameter(s): discount_type"
            return 400, _error("rest_invalid_param", message, 400)
        if any(c["code"] == code for c in self.coupons.values()):
            return 400, _error(
                "woocommerce_rest_coupon_code_already_exists", "The coupon code already exists", 400
            )
        return 201, self._coupon_make(sent)

    def _coupon_make(self, sent: JSON) -> JSON:
        self._next_coupon_id += 1
        expires = sent.get("date_expires")
        expires_at = dt.datetime.fromisoformat(expires) if expires else None
        if expires_at is not None and expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=SITE_TZ)
        made = {
            "id": self._next_coupon_id,
            # wc_format_coupon_code, then lower case: codes are case-insensitive.
            "code": str(sent["code"]).strip().lower(),
            "amount": money(sent.get("amount") or "0"),
            "status": "publish",
            **dates("date_created", T0),
            **dates("date_modified", T0),
            "discount_type": sent.get("discount_type", "fixed_cart"),
            "description": sent.get("description", ""),
            **dates("date_expires", expires_at),
            "usage_count": 0,
            "individual_use": bool(sent.get("individual_use", False)),
            "product_ids": list(sent.get("product_ids") or []),
            "excluded_product_ids": list(sent.get("excluded_product_ids") or []),
            "usage_limit": sent.get("usage_limit"),
            "usage_limit_per_user": sent.get("usage_limit_per_user"),
            "limit_usage_to_x_items": sent.get("limit_usage_to_x_items"),
            "free_shipping": bool(sent.get("free_shipping", False)),
            "product_categories": [],
            "excluded_product_categories": [],
            "exclude_sale_items": False,
            "minimum_amount": money(sent.get("minimum_amount") or "0"),
            "maximum_amount": money(sent.get("maximum_amount") or "0"),
            "email_restrictions": [str(e).lower() for e in sent.get("email_restrictions") or []],
            "used_by": [],
            "meta_data": [],
        }
        self.coupons[made["id"]] = made
        return copy.deepcopy(made)


def _error(code: str, message: str, status: int) -> JSON:
    return {"code": code, "message": message, "data": {"status": status}}


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def serve(shop: FakeShop) -> Iterator[str]:
    """Serve `shop` on a free loopback port; yields its address (the store's api_url)."""
    server: WSGIServer = make_server("127.0.0.1", 0, shop, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --------------------------------------------------------------------------- a shop's history


FIRST_NAMES = ("Ada", "Bruno", "Chiara", "Dario", "Elena", "Fabio", "Giulia", "Luca", "Marta")
LAST_NAMES = ("Rossi", "Bianchi", "Esposito", "Romano", "Colombo", "Ricci", "Greco", "Conti")
CITIES = ("Milano", "Torino", "Bologna", "Napoli", "Firenze", "Roma")
TEAS = ("Sencha", "Darjeeling", "Rooibos", "Oolong", "Matcha", "Earl Grey", "Chai", "Assam")
SIZES = ("50g", "100g", "250g")


@dataclass
class _Order:
    record: JSON
    paid: bool = False
    completed: bool = False
    cancelled: bool = False
    # Quantity of each line not yet refunded.
    left: dict[int, int] = field(default_factory=dict)


class ShopHistory:
    """A WooCommerce shop living through customers, products and orders.

    Each step changes `shop` the way WooCommerce would and returns the (topic, payload)
    pairs it sends for it, every one with a later date_modified than the one before. The
    same seed gives the same history.
    """

    def __init__(self, shop: FakeShop, *, seed: int = 1, start: dt.datetime = T0) -> None:
        self.shop = shop
        self.rng = random.Random(seed)
        self.clock = start
        self.customers: list[JSON] = []
        self.products: list[JSON] = []
        self.orders: list[_Order] = []
        self._next = {"customer": 100, "product": 1_000, "order": 5_000, "line": 90_000}
        self._next["refund"] = 60_000

    @classmethod
    def continuing(cls, shop: FakeShop, *, seed: int, start: dt.datetime) -> ShopHistory:
        """A history going on from what `shop` holds (its records, its highest ids)."""
        history = cls(shop, seed=seed, start=start)
        history.customers = [copy.deepcopy(r) for r in shop.records["customers"].values()]
        history.products = [copy.deepcopy(r) for r in shop.records["products"].values()]
        lines = [0]
        for record in shop.records["orders"].values():
            refunded: dict[int, int] = {}
            for made in shop.refunds.get(int(record["id"]), {}).values():
                for item in made["line_items"]:
                    line_id = int(item["meta_data"][0]["value"])
                    refunded[line_id] = refunded.get(line_id, 0) - int(item["quantity"])
            history.orders.append(
                _Order(
                    record=copy.deepcopy(record),
                    paid=record["date_paid_gmt"] is not None,
                    completed=record["date_completed_gmt"] is not None,
                    cancelled=record["status"] == "cancelled",
                    left={
                        li["id"]: li["quantity"] - refunded.get(li["id"], 0)
                        for li in record["line_items"]
                    },
                )
            )
            lines.extend(int(li["id"]) for li in record["line_items"])
        variations = [i for found in shop.variations.values() for i in found]
        refunds = [i for found in shop.refunds.values() for i in found]
        history._next = {
            "customer": max([100, *shop.records["customers"]]),
            "product": max([1_000, *shop.records["products"], *variations]),
            "order": max([5_000, *shop.records["orders"]]),
            "line": max([90_000, *lines]),
            "refund": max([60_000, *refunds]),
        }
        return history

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
        record = customer(
            ident,
            email=f"{first.lower()}.{last.lower()}.{ident}@example.com",
            first_name=first,
            last_name=last,
            phone=f"+39 333 {ident:07d}" if self.rng.random() < 0.3 else "",
            city=self.rng.choice(CITIES),
            created_at=now,
        )
        self.customers.append(record)
        self.shop.put("customers", record)
        return [("customer.created", copy.deepcopy(record))]

    def customer_update(self) -> list[tuple[str, JSON]]:
        record = self.rng.choice(self.customers)
        now = self.tick()
        record["first_name"] = self.rng.choice(FIRST_NAMES)
        record["billing"]["city"] = self.rng.choice(CITIES)
        record.update(dates("date_modified", now))
        self.shop.put("customers", record)
        return [("customer.updated", copy.deepcopy(record))]

    # ---- products
    def product_create(self) -> list[tuple[str, JSON]]:
        ident = self._id("product")
        now = self.tick()
        name = f"{self.rng.choice(TEAS)} {ident}"
        image = f"{SITE}wp-content/uploads/2026/02/tea-{ident}.jpg"
        if self.rng.random() < 0.5:
            record = product(
                ident,
                name=name,
                sku=f"TEA-{ident}",
                image=image,
                created_at=now,
                price=money(Decimal(self.rng.randint(400, 3000)) / 100),
            )
        else:
            options = SIZES[: self.rng.randint(2, 3)]
            ids = [self._id("product") for _option in options]
            for var_id, option in zip(ids, options, strict=True):
                price = money(Decimal(self.rng.randint(400, 3000)) / 100)
                self.shop.put_variation(
                    ident,
                    variation(
                        var_id,
                        parent_id=ident,
                        sku=f"TEA-{ident}-{option}",
                        price=price,
                        option=option,
                        created_at=now,
                    ),
                )
            record = product(
                ident,
                name=name,
                kind="variable",
                price="",
                variations=ids,
                image=image,
                created_at=now,
            )
        self.products.append(record)
        self.shop.put("products", record)
        return [("product.created", copy.deepcopy(record))]

    def product_update(self) -> list[tuple[str, JSON]]:
        record = self.rng.choice(self.products)
        now = self.tick()
        if record["type"] == "variable" and self.rng.random() < 0.5:
            # A variation saved on its own: product.updated carries the variation.
            chosen = self.rng.choice(list(self.shop.variations[record["id"]].values()))
            chosen["price"] = money(Decimal(self.rng.randint(400, 3000)) / 100)
            chosen["regular_price"] = chosen["price"]
            chosen.update(dates("date_modified", now))
            self.shop.put_variation(record["id"], chosen)
            return [("product.updated", variation_as_product(chosen, name=record["name"]))]
        if record["type"] == "simple":
            record["price"] = money(Decimal(self.rng.randint(400, 3000)) / 100)
            record["regular_price"] = record["price"]
        record["status"] = self.rng.choice(("publish", "publish", "publish", "draft", "private"))
        record.update(dates("date_modified", now))
        self.shop.put("products", record)
        return [("product.updated", copy.deepcopy(record))]

    # ---- orders
    def _buyer(self, ident: int) -> tuple[int, JSON]:
        roll = self.rng.random()
        if roll < 0.7 and self.customers:
            buyer = self.rng.choice(self.customers)
            billing = copy.deepcopy(buyer["billing"])
            return int(buyer["id"]), billing
        if roll < 0.8 and self.customers:
            # A guest checkout with a customer's email.
            billing = copy.deepcopy(self.rng.choice(self.customers)["billing"])
            return 0, billing
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        email = f"guest.{ident}@example.org"
        return 0, address(
            first_name=first, last_name=last, email=email, phone="", city=self.rng.choice(CITIES)
        )

    def order_create(self) -> list[tuple[str, JSON]]:
        ident = self._id("order")
        now = self.tick()
        customer_id, billing = self._buyer(ident)
        coded = self.rng.random() < 0.2
        taxed = self.rng.random() < 0.3
        lines = []
        for _n in range(self.rng.randint(1, 3)):
            tea = self.rng.choice(self.products)
            quantity = self.rng.randint(1, 3)
            if tea["type"] == "variable":
                chosen = self.rng.choice(list(self.shop.variations[tea["id"]].values()))
                var_id, sku, price = int(chosen["id"]), chosen["sku"], Decimal(chosen["price"])
                name = f"{tea['name']} - {chosen['attributes'][0]['option']}"
            else:
                var_id, sku, price, name = 0, tea["sku"], Decimal(tea["price"]), tea["name"]
            discount = (price * quantity / 10).quantize(CENT) if coded else Decimal(0)
            lines.append(
                line_item(
                    self._id("line"),
                    product_id=int(tea["id"]),
                    variation_id=var_id,
                    name=name,
                    sku=sku,
                    quantity=quantity,
                    price=price,
                    discount=discount,
                    tax_rate="0.10" if taxed else "0",
                )
            )
        landing = (
            f"{SITE}?ref=friend{self.rng.randint(1, 40)}&utm_source=instagram"
            if self.rng.random() < 0.25
            else None
        )
        record = order(
            ident,
            created_at=now,
            lines=lines,
            billing=billing,
            customer_id=customer_id,
            coupons=("welcome10",) if coded else (),
            shipping_total="4.90" if self.rng.random() < 0.7 else "0.00",
            landing_page=landing,
        )
        state = _Order(record=record, left={li["id"]: li["quantity"] for li in lines})
        self.orders.append(state)
        self.shop.put("orders", record)
        events = [("order.created", copy.deepcopy(record))]
        if self.rng.random() < 0.6:
            # A card payment at checkout: the order turns processing right away.
            events += self._pay(state)
        return events

    def _pick(self, test: Callable[[_Order], bool]) -> _Order | None:
        recent = self.orders[-60:]
        candidates = [state for state in recent if test(state)]
        return self.rng.choice(candidates) if candidates else None

    def _touch(self, state: _Order, now: dt.datetime | None = None) -> list[tuple[str, JSON]]:
        state.record.update(dates("date_modified", now or self.tick()))
        self.shop.put("orders", state.record)
        return [("order.updated", copy.deepcopy(state.record))]

    def _pay(self, state: _Order) -> list[tuple[str, JSON]]:
        now = self.tick()
        state.paid = True
        state.record["status"] = "processing"
        state.record.update(dates("date_paid", now))
        state.record["transaction_id"] = f"pi_{state.record['id']}"
        state.record["needs_payment"] = False
        return self._touch(state, now)

    def order_pay(self) -> list[tuple[str, JSON]]:
        state = self._pick(lambda s: not s.paid and not s.cancelled)
        return self._pay(state) if state is not None else []

    def order_hold(self) -> list[tuple[str, JSON]]:
        state = self._pick(lambda s: not s.paid and not s.cancelled)
        if state is None:
            return []
        state.record["status"] = "on-hold"
        return self._touch(state)

    def order_update(self) -> list[tuple[str, JSON]]:
        state = self._pick(lambda s: not s.cancelled)
        if state is None:
            return []
        state.record["customer_note"] = f"Gift wrap please ({self.rng.randint(1, 99)})"
        return self._touch(state)

    def order_complete(self) -> list[tuple[str, JSON]]:
        state = self._pick(lambda s: s.paid and not s.completed and not s.cancelled)
        if state is None:
            return []
        now = self.tick()
        state.completed = True
        if state.record["status"] == "processing":
            state.record["status"] = "completed"
        state.record.update(dates("date_completed", now))
        return self._touch(state, now)

    def order_cancel(self) -> list[tuple[str, JSON]]:
        state = self._pick(lambda s: not s.paid and not s.cancelled)
        if state is None:
            return []
        state.cancelled = True
        state.record["status"] = "cancelled"
        return self._touch(state)

    def order_refund(self) -> list[tuple[str, JSON]]:
        state = self._pick(lambda s: s.paid and not s.cancelled and any(s.left.values()))
        if state is None:
            return []
        record = state.record
        item = self.rng.choice([li for li in record["line_items"] if state.left[li["id"]]])
        state.left[item["id"]] -= 1
        value = (Decimal(item["total"]) / item["quantity"]).quantize(CENT)
        everything = not any(state.left.values())
        extra = Decimal(record["shipping_total"]) if everything else Decimal(0)
        made = refund(
            self._id("refund"),
            order_id=record["id"],
            created_at=self.tick(),
            lines=[(item, 1, value)],
            extra=extra,
            reason=self.rng.choice(("", "Damaged in transit", "Changed mind")),
        )
        self.shop.put_refund(record["id"], made)
        record["refunds"].insert(0, refund_summary(made))
        if everything:
            record["status"] = "refunded"
        # order.updated fires for the refund (woocommerce_order_refunded).
        return self._touch(state)

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
            (self.order_pay, 6),
            (self.order_hold, 2),
            (self.order_update, 6),
            (self.order_complete, 12),
            (self.order_cancel, 3),
            (self.order_refund, 7),
        ]
        action = self.rng.choices([a for a, _w in actions], weights=[w for _a, w in actions])[0]
        return action()

    def events(self, count: int) -> list[tuple[str, JSON]]:
        """At least `count` events (a step may make two), cut to exactly `count`."""
        out: list[tuple[str, JSON]] = []
        while len(out) < count:
            out.extend(self.step())
        return out[:count]


def sign_events(
    events: Iterable[tuple[str, JSON]], *, secret: str, source: str = SITE, seed: int = 1
) -> list[Signed]:
    """Signed deliveries of `events`, one webhook per topic, as WooCommerce would post them."""
    rng = random.Random(seed * 7919)
    hooks: dict[str, int] = {}
    return [
        delivery(
            secret=secret,
            topic=topic,
            payload=payload,
            source=source,
            webhook_id=hooks.setdefault(topic, len(hooks) + 1),
            delivery=delivery_id(rng),
        )
        for topic, payload in events
    ]


def history_deliveries(
    *, secret: str, count: int, seed: int = 1, shop: FakeShop | None = None
) -> list[Signed]:
    """`count` signed deliveries of a fresh shop's history (the same for the same seed); the
    shop, when given, ends in the state the history left it in."""
    history = ShopHistory(shop or FakeShop(), seed=seed)
    return sign_events(history.events(count), secret=secret, seed=seed)
