"""A fake BigCommerce for tests and benchmarks.

Two parts, both usable without Django's test client:

* Deliveries: `webhook_payload` builds an id-only callback body as the "Webhook Events"
  reference shows it (scope, store_id, data, hash, created_at, producer) and `sign` wraps it in
  the Standard Webhooks headers BigCommerce sends; `redeliver` is BigCommerce's retry of it
  (same body and webhook-id, a fresh timestamp and signature).
* `FakeShop`: an in-memory store that changes through methods (a customer signs up, an order
  is paid, shipped, refunded…), records the webhook payload of each change in `events`, and
  answers the REST API as a WSGI app in the documented JSON shapes: Orders V2 (RFC 2822
  times, decimal strings, 204 for an empty list), V3 refunds, customers and catalog products
  (ISO 8601 times, meta.pagination). It can throttle (429 with X-Rate-Limit-Time-Reset-Ms)
  or fail (5xx) on demand. Serve it over loopback with `serve`, or in process with
  httpx.WSGITransport(app=shop).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from circolo.commerce.connectors.bigcommerce.signatures import signed_headers

STORE_HASH = "bottega7"
STORE_ID = "1025646"
ACCESS_TOKEN = "bc-test-access-token"
T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
TAX_RATE = Decimal("0.10")

Signed = tuple[dict[str, str], bytes]


# --------------------------------------------------------------------------- formats


def rfc2822(when: dt.datetime | None) -> str:
    """A V2 time: "Sun, 01 Mar 2026 09:00:00 +0000"; "" for none."""
    if when is None:
        return ""
    return email.utils.format_datetime(when.astimezone(dt.UTC)).replace("-0000", "+0000")


def iso(when: dt.datetime | None) -> str | None:
    return when.astimezone(dt.UTC).isoformat(timespec="seconds") if when else None


def decimal4(minor: int) -> str:
    """An amount as V2 writes it: "12.5000" for 1250 minor units of a two-decimal currency."""
    return str((Decimal(minor) / 100).quantize(Decimal("0.0001")))


def number(minor: int) -> float:
    """An amount as V3 writes it: a JSON number."""
    return float(Decimal(minor) / 100)


# --------------------------------------------------------------------------- deliveries


def event_hash(payload: dict[str, Any]) -> str:
    metadata = {key: value for key, value in payload.items() if key != "hash"}
    encoded = json.dumps(metadata, separators=(",", ":")).encode("utf-8")
    return hashlib.sha1(encoded, usedforsecurity=False).hexdigest()


def webhook_payload(
    *,
    scope: str,
    data: dict[str, Any],
    created_at: int,
    store_hash: str = STORE_HASH,
    store_id: str = STORE_ID,
) -> dict[str, Any]:
    """An id-only callback body, with its event hash."""
    payload: dict[str, Any] = {
        "scope": scope,
        "store_id": store_id,
        "data": data,
        "created_at": created_at,
        "producer": f"stores/{store_hash}",
    }
    payload["hash"] = event_hash(payload)
    return payload


def sign(
    payload: dict[str, Any] | bytes,
    *,
    secret: str,
    msg_id: str | None = None,
    timestamp: int | None = None,
    extra: dict[str, str] | None = None,
) -> Signed:
    """Headers and body of one delivery attempt signed with `secret`."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
    if msg_id is None:
        msg_id = "msg_" + hashlib.sha256(body).hexdigest()[:24]
    stamp = int(time.time()) if timestamp is None else timestamp
    headers = signed_headers(secret, msg_id=msg_id, timestamp=stamp, body=body)
    headers["content-type"] = "application/json"
    headers.update(extra or {})
    return headers, body


def redeliver(signed: Signed, *, secret: str, timestamp: int | None = None) -> Signed:
    """BigCommerce's retry of a delivery: the same body and webhook-id, signed afresh."""
    headers, body = signed
    again = sign(body, secret=secret, msg_id=headers["webhook-id"], timestamp=timestamp)
    extra = {k: v for k, v in headers.items() if not k.startswith("webhook-")}
    again[0].update(extra)
    return again


# --------------------------------------------------------------------------- the shop


@dataclass
class FakeShop:
    """An in-memory BigCommerce store and its REST API (a WSGI app: call it).

    Discount coupons made through POST /v2/coupons are kept in `store_coupons` (`coupons`
    holds the coupons applied to each order)."""

    store_hash: str = STORE_HASH
    access_token: str = ACCESS_TOKEN
    currency: str = "EUR"
    now: dt.datetime = T0
    customers: dict[int, dict[str, Any]] = field(default_factory=dict)
    products: dict[int, dict[str, Any]] = field(default_factory=dict)
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    order_products: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    coupons: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    addresses: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    refunds: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    # Webhook payloads of every change, in the order they happened.
    events: list[dict[str, Any]] = field(default_factory=list)
    # Paths asked for, with their query strings, for assertions.
    requests: list[str] = field(default_factory=list)
    # The next `throttle` requests answer 429 with X-Rate-Limit-Time-Reset-Ms.
    throttle: int = 0
    throttle_reset_ms: int = 1500
    # After `fail_after` more requests, every request answers `fail_status`.
    fail_after: int | None = None
    fail_status: int = 500
    # After `hang_after` more requests, the next `hang_times` answer `hang_seconds` late,
    # their work done (a client with a shorter timeout sees a timeout, the store the change).
    hang_after: int = 0
    hang_times: int = 0
    hang_seconds: float = 0.0
    store_coupons: dict[int, dict[str, Any]] = field(default_factory=dict)
    _next_id: dict[str, int] = field(default_factory=dict)

    # ---- changes
    def _id(self, kind: str, start: int) -> int:
        self._next_id[kind] = self._next_id.get(kind, start) + 1
        return self._next_id[kind]

    def tick(self, seconds: int = 1) -> dt.datetime:
        self.now += dt.timedelta(seconds=seconds)
        return self.now

    def emit(self, scope: str, data: dict[str, Any]) -> dict[str, Any]:
        payload = webhook_payload(
            scope=scope,
            data=data,
            created_at=int(self.now.timestamp()),
            store_hash=self.store_hash,
        )
        self.events.append(payload)
        return payload

    def add_customer(
        self,
        *,
        email: str,
        first_name: str = "Ada",
        last_name: str = "Rossi",
        phone: str = "",
        city: str = "Torino",
        country: str = "IT",
    ) -> int:
        when = self.tick()
        customer_id = self._id("customer", 0)
        self.customers[customer_id] = {
            "id": customer_id,
            "email": email,
            "first_name": first_name,
            "last_name": last_name,
            "company": "",
            "phone": phone,
            "notes": "",
            "customer_group_id": 0,
            "date_created": iso(when),
            "date_modified": iso(when),
            "accepts_product_review_abandoned_cart_emails": False,
            "channel_ids": [1],
            "addresses": [
                {
                    "id": customer_id,
                    "customer_id": customer_id,
                    "first_name": first_name,
                    "last_name": last_name,
                    "address1": "Via Roma 1",
                    "address2": "",
                    "city": city,
                    "state_or_province": "",
                    "postal_code": "10100",
                    "country_code": country,
                    "phone": phone,
                    "address_type": "residential",
                }
            ],
        }
        self.emit("store/customer/created", {"type": "customer", "id": customer_id})
        return customer_id

    def update_customer(self, customer_id: int, **changes: Any) -> None:
        when = self.tick()
        row = self.customers[customer_id]
        row.update(changes)
        row["date_modified"] = iso(when)
        self.emit("store/customer/updated", {"type": "customer", "id": customer_id})

    def add_product(
        self,
        *,
        name: str,
        variants: Iterable[tuple[str, int, str]] = (),
        price_minor: int = 1000,
        visible: bool = True,
    ) -> int:
        """A product with (sku, price_minor, label) variants; one base variant without any."""
        when = self.tick()
        product_id = self._id("product", 100)
        rows = list(variants) or [(f"SKU-{product_id}", price_minor, "")]
        self.products[product_id] = {
            "id": product_id,
            "name": name,
            "type": "physical",
            "sku": rows[0][0],
            "price": number(price_minor),
            "calculated_price": number(price_minor),
            "is_visible": visible,
            "availability": "available",
            "custom_url": {"url": f"/{name.lower().replace(' ', '-')}/", "is_customized": False},
            "date_created": iso(when),
            "date_modified": iso(when),
            "images": [
                {
                    "id": product_id,
                    "product_id": product_id,
                    "is_thumbnail": True,
                    "url_standard": f"https://cdn.example.com/products/{product_id}.jpg",
                }
            ],
            "variants": [
                {
                    "id": self._id("variant", 500),
                    "product_id": product_id,
                    "sku": sku,
                    "price": number(price) if label else None,
                    "calculated_price": number(price),
                    "option_values": (
                        [{"id": 1, "label": label, "option_id": 1, "option_display_name": "Size"}]
                        if label
                        else []
                    ),
                }
                for sku, price, label in rows
            ],
        }
        self.emit("store/product/created", {"type": "product", "id": product_id})
        return product_id

    def update_product(self, product_id: int, **changes: Any) -> None:
        when = self.tick()
        row = self.products[product_id]
        row.update(changes)
        row["date_modified"] = iso(when)
        self.emit("store/product/updated", {"type": "product", "id": product_id})

    def update_variant_price(self, variant_id: int, price_minor: int) -> None:
        self.tick()
        for product in self.products.values():
            for variant in product["variants"]:
                if variant["id"] == variant_id:
                    variant["price"] = number(price_minor)
                    variant["calculated_price"] = number(price_minor)
                    product["date_modified"] = iso(self.now)
                    data = {
                        "type": "sku",
                        "id": variant_id,
                        "sku": {"product_id": product["id"], "variant_id": variant_id},
                    }
                    self.emit("store/sku/updated", data)
                    return
        raise KeyError(variant_id)

    def delete_product(self, product_id: int) -> None:
        self.tick()
        del self.products[product_id]
        self.emit("store/product/deleted", {"type": "product", "id": product_id})

    def variant(self, variant_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
        for product in self.products.values():
            for variant in product["variants"]:
                if variant["id"] == variant_id:
                    return product, variant
        raise KeyError(variant_id)

    def place_order(
        self,
        *,
        items: Iterable[tuple[int, int]],
        customer_id: int | None = None,
        guest_email: str = "",
        status_id: int = 11,
        coupon: tuple[str, int] | None = None,
        shipping_minor: int = 500,
    ) -> int:
        """An order of (variant id, quantity) items; a coupon is (code, amount off)."""
        when = self.tick()
        order_id = self._id("order", 100)
        customer = self.customers.get(customer_id or 0)
        email_address = customer["email"] if customer else guest_email
        first = customer["first_name"] if customer else "Guest"
        last = customer["last_name"] if customer else "Shopper"
        lines = []
        for variant_id, quantity in items:
            product, variant = self.variant(variant_id)
            price = int(Decimal(str(variant["calculated_price"])) * 100)
            lines.append(
                {
                    "id": self._id("order_product", 1000),
                    "order_id": order_id,
                    "product_id": product["id"],
                    "variant_id": variant_id,
                    "order_address_id": order_id,
                    "name": product["name"],
                    "sku": variant["sku"],
                    "type": "physical",
                    "quantity": quantity,
                    "_price": price,
                    "applied_discounts": [],
                    "product_options": [],
                    "quantity_refunded": 0,
                    "is_refunded": False,
                    "parent_order_product_id": None,
                    "is_bundled_product": False,
                }
            )
        subtotal = sum(line["_price"] * line["quantity"] for line in lines)
        off = 0
        if coupon is not None:
            code, off = coupon
            off = min(off, subtotal)
            # The coupon's amount is spread over the lines, the remainder on the last one.
            left = off
            for index, line in enumerate(lines):
                share = (
                    left
                    if index == len(lines) - 1
                    else off * line["_price"] * line["quantity"] // max(subtotal, 1)
                )
                left -= share
                line["applied_discounts"] = [
                    {
                        "id": "coupon",
                        "amount": decimal4(share),
                        "name": code,
                        "code": code,
                        "target": "order",
                    }
                ]
            self.coupons[order_id] = [
                {"id": order_id, "coupon_id": 7, "order_id": order_id, "code": code,
                 "amount": number(off), "type": 2, "discount": number(off)}
            ]  # fmt: skip
        taxable = subtotal - off + shipping_minor
        tax = int((Decimal(taxable) * TAX_RATE).quantize(Decimal(1)))
        for line in lines:
            line.update(self._line_prices(line))
        billing = {
            "first_name": first,
            "last_name": last,
            "company": "",
            "street_1": "Via Roma 1",
            "street_2": "",
            "city": customer["addresses"][0]["city"] if customer else "Milano",
            "state": "",
            "zip": "10100",
            "country": "Italy",
            "country_iso2": "IT",
            "phone": customer["phone"] if customer else "",
            "email": email_address,
            "form_fields": [],
        }
        self.orders[order_id] = {
            "id": order_id,
            "customer_id": customer_id or 0,
            "date_created": rfc2822(when),
            "date_modified": rfc2822(when),
            "date_shipped": "",
            "status_id": status_id,
            "status": STATUS_NAMES[status_id],
            "subtotal_ex_tax": decimal4(subtotal),
            "subtotal_inc_tax": decimal4(subtotal + (subtotal * 10 + 50) // 100),
            "subtotal_tax": decimal4((subtotal * 10 + 50) // 100),
            "base_shipping_cost": decimal4(shipping_minor),
            "shipping_cost_ex_tax": decimal4(shipping_minor),
            "shipping_cost_inc_tax": decimal4(shipping_minor + (shipping_minor * 10 + 50) // 100),
            "total_ex_tax": decimal4(taxable),
            "total_inc_tax": decimal4(taxable + tax),
            "total_tax": decimal4(tax),
            "is_tax_inclusive_pricing": False,
            "items_total": sum(line["quantity"] for line in lines),
            "items_shipped": 0,
            "payment_method": "Credit Card",
            "payment_status": "captured" if status_id in (11, 10, 2) else "pending",
            "refunded_amount": "0.0000",
            "store_credit_amount": "0.0000",
            "gift_certificate_amount": "0.0000",
            "currency_id": 1,
            "currency_code": self.currency,
            "currency_exchange_rate": "1.0000000000",
            "default_currency_id": 1,
            "default_currency_code": self.currency,
            "discount_amount": "0.0000",
            "coupon_discount": decimal4(off),
            "shipping_address_count": 1,
            "is_deleted": False,
            "is_email_opt_in": customer_id is not None,
            "order_source": "www",
            "channel_id": 1,
            "external_source": None,
            "customer_locale": "it",
            "billing_address": billing,
            "products": {"url": "", "resource": f"/orders/{order_id}/products"},
            "shipping_addresses": {"url": "", "resource": f"/orders/{order_id}/shipping_addresses"},
            "coupons": {"url": "", "resource": f"/orders/{order_id}/coupons"},
        }
        self.order_products[order_id] = lines
        self.addresses[order_id] = [
            {
                **{key: billing[key] for key in ("first_name", "last_name", "company", "street_1",
                                                  "street_2", "city", "state", "zip", "country",
                                                  "country_iso2", "email", "phone")},
                "id": order_id,
                "order_id": order_id,
                "items_total": sum(line["quantity"] for line in lines),
                "items_shipped": 0,
                "shipping_method": "Flat Rate",
                "base_cost": decimal4(shipping_minor),
                "cost_ex_tax": decimal4(shipping_minor),
            }
        ]  # fmt: skip
        self.emit("store/order/created", {"type": "order", "id": order_id})
        return order_id

    @staticmethod
    def _line_prices(line: dict[str, Any]) -> dict[str, Any]:
        price = line["_price"]
        total = price * line["quantity"]
        return {
            "base_price": decimal4(price),
            "price_ex_tax": decimal4(price),
            "price_inc_tax": decimal4(price + (price * 10 + 50) // 100),
            "price_tax": decimal4((price * 10 + 50) // 100),
            "base_total": decimal4(total),
            "total_ex_tax": decimal4(total),
            "total_inc_tax": decimal4(total + (total * 10 + 50) // 100),
            "total_tax": decimal4((total * 10 + 50) // 100),
        }

    def set_status(self, order_id: int, status_id: int) -> None:
        """A status change: BigCommerce fires statusUpdated and updated for it."""
        when = self.tick()
        order = self.orders[order_id]
        previous = order["status_id"]
        order["status_id"] = status_id
        order["status"] = STATUS_NAMES[status_id]
        order["date_modified"] = rfc2822(when)
        if status_id in (2, 10, 11, 9, 3):
            order["payment_status"] = "captured"
        if status_id == 2 and not order["date_shipped"]:
            order["date_shipped"] = rfc2822(when)
            order["items_shipped"] = order["items_total"]
        status = {"previous_status_id": previous, "new_status_id": status_id}
        self.emit("store/order/statusUpdated", {"type": "order", "id": order_id, "status": status})
        self.emit("store/order/updated", {"type": "order", "id": order_id})

    def refund(
        self,
        order_id: int,
        *,
        items: Iterable[tuple[int, int]],
        shipping_minor: int = 0,
        reason: str = "Damaged in transit",
    ) -> int:
        """A refund of (order product id, quantity) items and some shipping."""
        when = self.tick()
        lines = {line["id"]: line for line in self.order_products[order_id]}
        refund_items: list[dict[str, Any]] = []
        total = 0
        for line_id, quantity in items:
            line = lines[line_id]
            discount = sum(
                int(Decimal(applied["amount"]) * 100) for applied in line["applied_discounts"]
            )
            gross = line["_price"] * line["quantity"] - discount
            share = (gross * quantity * 2 + line["quantity"]) // (2 * line["quantity"])
            total += share
            line["quantity_refunded"] += quantity
            refund_items.append(
                {"item_type": "PRODUCT", "item_id": line_id, "quantity": quantity,
                 "requested_amount": None, "reason": reason}
            )  # fmt: skip
        if shipping_minor:
            total += shipping_minor
            refund_items.append(
                {"item_type": "SHIPPING", "item_id": order_id, "quantity": None,
                 "requested_amount": number(shipping_minor), "reason": reason}
            )  # fmt: skip
        refund_id = self._id("refund", 0)
        self.refunds.setdefault(order_id, []).append(
            {
                "id": refund_id,
                "order_id": order_id,
                "user_id": 0,
                "created": iso(when),
                "reason": reason,
                "total_amount": number(total),
                "total_tax": 0,
                "uses_merchant_override_values": False,
                "items": refund_items,
                "payments": [
                    {"id": refund_id, "provider_id": "storecredit", "amount": number(total),
                     "offline": False, "is_declined": False, "declined_message": ""}
                ],
            }
        )  # fmt: skip
        self.emit(
            "store/order/refund/created",
            {"type": "order", "id": order_id, "refund": {"refund_id": refund_id}},
        )
        order = self.orders[order_id]
        refunded = sum(int(Decimal(str(r["total_amount"])) * 100) for r in self.refunds[order_id])
        order["refunded_amount"] = decimal4(refunded)
        full = refunded >= int(Decimal(order["total_inc_tax"]) * 100)
        self.set_status(order_id, 4 if full else 14)
        return refund_id

    # ---- the API
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING", "")
        self.requests.append(f"{path}?{query}" if query else path)
        if self.hang_times > 0:
            if self.hang_after > 0:
                self.hang_after -= 1
            else:
                self.hang_times -= 1
                time.sleep(self.hang_seconds)
        if self.fail_after is not None:
            if self.fail_after <= 0:
                return _answer(start_response, self.fail_status, {"title": "Internal error"})
            self.fail_after -= 1
        if self.throttle > 0:
            self.throttle -= 1
            headers = [
                ("X-Rate-Limit-Time-Window-Ms", "30000"),
                ("X-Rate-Limit-Time-Reset-Ms", str(self.throttle_reset_ms)),
                ("X-Rate-Limit-Requests-Quota", "150"),
                ("X-Rate-Limit-Requests-Left", "0"),
            ]
            return _answer(start_response, 429, {"title": "Too many requests"}, headers)
        if environ.get("HTTP_X_AUTH_TOKEN") != self.access_token:
            return _answer(start_response, 401, {"status": 401, "title": "Unauthorized"})
        prefix = f"/stores/{self.store_hash}/"
        if not path.startswith(prefix):
            return _answer(start_response, 404, {"status": 404, "title": "Store not found"})
        params = {key: values[-1] for key, values in parse_qs(query).items()}
        route = path[len(prefix) :].rstrip("/")
        if route == "v2/coupons":
            status, body = self._coupons(environ, params)
            return _answer(start_response, status, body)
        for pattern, handler in ROUTES:
            match = re.fullmatch(pattern, route)
            if match:
                status, body = handler(self, params, *match.groups())
                return _answer(start_response, status, body)
        return _answer(start_response, 404, {"status": 404, "title": "Not found"})

    # ---- API handlers: (status, body); None is 204 No Content
    def _store(self, params: dict[str, str]) -> tuple[int, Any]:
        return 200, {"id": self.store_hash, "name": "Bottega Verde", "currency": self.currency}

    def _orders(self, params: dict[str, str]) -> tuple[int, Any]:
        since = _since(params.get("min_date_modified"))
        rows = [
            self._order_out(order)
            for order_id, order in sorted(self.orders.items())
            if since is None or email.utils.parsedate_to_datetime(order["date_modified"]) >= since
        ]
        return _v2_page(rows, params)

    def _order(self, params: dict[str, str], order_id: str) -> tuple[int, Any]:
        order = self.orders.get(int(order_id))
        if order is None:
            return 404, [{"status": 404, "message": "The requested resource was not found."}]
        return 200, self._order_out(order)

    @staticmethod
    def _order_out(order: dict[str, Any]) -> dict[str, Any]:
        return dict(order)

    def _order_products(self, params: dict[str, str], order_id: str) -> tuple[int, Any]:
        rows = [
            {key: value for key, value in line.items() if not key.startswith("_")}
            for line in self.order_products.get(int(order_id), [])
        ]
        return _v2_page(rows, params)

    def _order_coupons(self, params: dict[str, str], order_id: str) -> tuple[int, Any]:
        return _v2_page(self.coupons.get(int(order_id), []), params)

    def _order_addresses(self, params: dict[str, str], order_id: str) -> tuple[int, Any]:
        return _v2_page(self.addresses.get(int(order_id), []), params)

    def _order_refunds(self, params: dict[str, str], order_id: str) -> tuple[int, Any]:
        return 200, {"data": self.refunds.get(int(order_id), []), "meta": {}}

    def _all_refunds(self, params: dict[str, str]) -> tuple[int, Any]:
        wanted = {int(part) for part in params.get("order_id:in", "").split(",") if part}
        rows = [
            refund
            for order_id in sorted(self.refunds)
            if not wanted or order_id in wanted
            for refund in self.refunds[order_id]
        ]
        return _v3_page(rows, params)

    def _customers(self, params: dict[str, str]) -> tuple[int, Any]:
        wanted = {int(part) for part in params.get("id:in", "").split(",") if part}
        since = _since(params.get("date_modified:min"))
        include = set(params.get("include", "").split(","))
        rows = []
        for customer_id, row in sorted(self.customers.items()):
            if wanted and customer_id not in wanted:
                continue
            if since is not None and dt.datetime.fromisoformat(row["date_modified"]) < since:
                continue
            out = dict(row)
            if "addresses" not in include:
                out.pop("addresses")
            rows.append(out)
        return _v3_page(rows, params)

    def _products(self, params: dict[str, str]) -> tuple[int, Any]:
        since = _since(params.get("date_modified:min"))
        include = set(params.get("include", "").split(","))
        rows = [
            _product_out(row, include)
            for _id, row in sorted(self.products.items())
            if since is None or dt.datetime.fromisoformat(row["date_modified"]) >= since
        ]
        return _v3_page(rows, params)

    def _product(self, params: dict[str, str], product_id: str) -> tuple[int, Any]:
        row = self.products.get(int(product_id))
        if row is None:
            return 404, {"status": 404, "title": "The requested product was not found."}
        include = set(params.get("include", "").split(","))
        return 200, {"data": _product_out(row, include), "meta": {}}

    # ---- discount coupons (Marketing V2)
    def put_coupon(self, code: str, *, name: str, max_uses: int = 0) -> dict[str, Any]:
        """A coupon as a merchant would make it in the control panel."""
        sent = {"name": name, "code": code, "type": "per_total_discount", "amount": "5"}
        return self._coupon_make({**sent, "applies_to": {"entity": "categories", "ids": [0]},
                                  "max_uses": max_uses})  # fmt: skip

    def _coupons(self, environ: dict[str, Any], params: dict[str, str]) -> tuple[int, Any]:
        if environ.get("REQUEST_METHOD", "GET") != "POST":
            wanted = params.get("code", "").lower()
            rows = [
                dict(c) for _id, c in sorted(self.store_coupons.items())
                if not wanted or c["code"].lower() == wanted
            ]  # fmt: skip
            return _v2_page(rows, params)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        try:
            sent = json.loads(environ["wsgi.input"].read(length) or b"{}")
        except ValueError:
            return 400, [{"status": 400, "message": "The request body is not valid JSON."}]
        for required in ("name", "code", "type", "amount", "applies_to"):
            if sent.get(required) in (None, ""):
                message = f"The required field '{required}' was not supplied."
                return 400, [{"status": 400, "message": message}]
        code = str(sent["code"])
        if len(code) > 50 or not re.fullmatch(r"[a-zA-Z0-9_ -]+", code):
            return 400, [{"status": 400, "message": "The field 'code' is invalid."}]
        if len(str(sent["name"])) > 100:
            return 400, [{"status": 400, "message": "The field 'name' is invalid."}]
        if sent["type"] not in COUPON_TYPES:
            return 400, [{"status": 400, "message": "The field 'type' is invalid."}]
        for key in ("code", "name"):
            taken = {str(c[key]).lower() for c in self.store_coupons.values()}
            if str(sent[key]).lower() in taken:
                details = {"conflict_reason": f"A coupon with {key} “{sent[key]}” already exists."}
                message = f"The field '{key}' must be unique."
                return 409, [{"status": 409, "message": message, "details": details}]
        return 201, self._coupon_make(sent)

    def _coupon_make(self, sent: dict[str, Any]) -> dict[str, Any]:
        coupon_id = self._id("coupon", 0)
        made = {
            "id": coupon_id,
            "name": sent["name"],
            "type": sent["type"],
            "amount": decimal4(to_cents(sent["amount"])),
            "min_purchase": decimal4(to_cents(sent.get("min_purchase") or "0")),
            "expires": sent.get("expires") or "",
            "enabled": bool(sent.get("enabled", True)),
            "code": sent["code"],
            "applies_to": sent["applies_to"],
            "num_uses": 0,
            "max_uses": int(sent.get("max_uses") or 0),
            "max_uses_per_customer": int(sent.get("max_uses_per_customer") or 0),
            "restricted_to": sent.get("restricted_to") or {},
            "shipping_methods": sent.get("shipping_methods") or [],
            "date_created": rfc2822(self.now),
        }
        self.store_coupons[coupon_id] = made
        return dict(made)


COUPON_TYPES = (
    "per_item_discount", "per_total_discount", "shipping_discount", "free_shipping",
    "percentage_discount", "promotion",
)  # fmt: skip


def to_cents(value: Any) -> int:
    return int(Decimal(str(value)) * 100)


STATUS_NAMES = {
    0: "Incomplete", 1: "Pending", 2: "Shipped", 3: "Partially Shipped", 4: "Refunded",
    5: "Cancelled", 6: "Declined", 7: "Awaiting Payment", 8: "Awaiting Pickup",
    9: "Awaiting Shipment", 10: "Completed", 11: "Awaiting Fulfillment",
    12: "Manual Verification Required", 13: "Disputed", 14: "Partially Refunded",
}  # fmt: skip

ROUTES: list[tuple[str, Callable[..., tuple[int, Any]]]] = [
    (r"v2/store", FakeShop._store),
    (r"v2/orders", FakeShop._orders),
    (r"v2/orders/(\d+)", FakeShop._order),
    (r"v2/orders/(\d+)/products", FakeShop._order_products),
    (r"v2/orders/(\d+)/coupons", FakeShop._order_coupons),
    (r"v2/orders/(\d+)/shipping_addresses", FakeShop._order_addresses),
    (r"v3/orders/(\d+)/payment_actions/refunds", FakeShop._order_refunds),
    (r"v3/orders/payment_actions/refunds", FakeShop._all_refunds),
    (r"v3/customers", FakeShop._customers),
    (r"v3/catalog/products", FakeShop._products),
    (r"v3/catalog/products/(\d+)", FakeShop._product),
]


def _product_out(row: dict[str, Any], include: set[str]) -> dict[str, Any]:
    out = dict(row)
    for part in ("variants", "images"):
        if part not in include:
            out.pop(part)
    return out


def _since(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    # A "+" left unencoded in a query string arrives as a space.
    return dt.datetime.fromisoformat(value.replace(" ", "+"))


def _paging(params: dict[str, str], default: int) -> tuple[int, int]:
    return max(int(params.get("page", 1)), 1), max(int(params.get("limit", default)), 1)


def _v2_page(rows: list[Any], params: dict[str, str]) -> tuple[int, Any]:
    page, limit = _paging(params, 50)
    chunk = rows[(page - 1) * limit : page * limit]
    return (200, chunk) if chunk else (204, None)


def _v3_page(rows: list[Any], params: dict[str, str]) -> tuple[int, Any]:
    page, limit = _paging(params, 50)
    chunk = rows[(page - 1) * limit : page * limit]
    total_pages = max((len(rows) + limit - 1) // limit, 1)
    links = {"current": f"?page={page}&limit={limit}"}
    if page > 1:
        links["previous"] = f"?page={page - 1}&limit={limit}"
    if page < total_pages:
        links["next"] = f"?page={page + 1}&limit={limit}"
    meta = {
        "pagination": {
            "total": len(rows),
            "count": len(chunk),
            "per_page": limit,
            "current_page": page,
            "total_pages": total_pages,
            "links": links,
        }
    }
    return 200, {"data": chunk, "meta": meta}


REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request",
           401: "Unauthorized", 404: "Not Found", 409: "Conflict",
           429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable"}  # fmt: skip


def _answer(
    start_response: Callable[..., Any],
    status: int,
    body: Any,
    headers: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    payload = b"" if body is None else json.dumps(body).encode("utf-8")
    out = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
    start_response(f"{status} {REASONS.get(status, 'Error')}", out + list(headers or []))
    return [payload]


# --------------------------------------------------------------------------- serving


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def serve(app: Callable[..., Any]) -> Iterator[str]:
    """Serve a WSGI app on a loopback port in a thread; yields its base URL."""
    server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def api_path(base_url: str, store_hash: str = STORE_HASH) -> str:
    """The API path BigCommerce shows with an API account, on the fake's address."""
    return f"{base_url.rstrip('/')}/stores/{store_hash}/v3/"


# --------------------------------------------------------------------------- a busy shop


def busy_shop(total_events: int, *, seed: int = 7, shop: FakeShop | None = None) -> FakeShop:
    """A shop whose history is exactly `total_events` webhook events: customers signing up
    and changing, products created and repriced, orders placed, paid, shipped, cancelled and
    refunded, each change one event (a status change two, a refund three) at its own second."""
    rng = random.Random(seed)
    shop = shop or FakeShop()
    sizes = ("S", "M", "L")
    variants: list[int] = []

    def left() -> int:
        return total_events - len(shop.events)

    def new_product() -> None:
        index = len(shop.products) + 1
        price = rng.randrange(800, 6000, 50)
        rows = [(f"P{index}-{size}", price + i * 100, size) for i, size in enumerate(sizes)]
        product_id = shop.add_product(name=f"Product {index}", variants=rows if index % 2 else ())
        variants.extend(v["id"] for v in shop.products[product_id]["variants"])

    def new_customer() -> None:
        index = len(shop.customers) + 1
        shop.add_customer(
            email=f"buyer{index}@example.com",
            first_name=f"Buyer{index}",
            phone=f"+39 333 {index:07d}" if index % 3 == 0 else "",
        )

    for _ in range(min(12, total_events // 10)):
        new_product()
    for _ in range(min(40, total_events // 10)):
        new_customer()
    by_status: dict[str, list[int]] = {"awaiting": [], "paid": [], "shipped": []}
    guests = 0
    while left() > 0:
        roll = rng.random()
        budget = left()
        if budget < 3 or roll < 0.06:
            if shop.customers and rng.random() < 0.5:
                customer_id = rng.choice(list(shop.customers))
                shop.update_customer(customer_id, last_name=f"Changed{len(shop.events)}")
            else:
                new_customer()
        elif roll < 0.09:
            new_product()
        elif roll < 0.11 and variants:
            shop.update_variant_price(rng.choice(variants), rng.randrange(800, 6000, 50))
        elif roll < 0.13 and shop.products:
            product_id = rng.choice(list(shop.products))
            shop.update_product(product_id, name=f"Product {product_id} v{len(shop.events)}")
        elif roll < 0.48:
            picked = rng.sample(variants, k=min(len(variants), rng.randint(1, 3)))
            items = [(variant_id, rng.randint(1, 3)) for variant_id in picked]
            coupon = ("WELCOME10", 500) if rng.random() < 0.2 else None
            status = 7 if rng.random() < 0.6 else 11
            if rng.random() < 0.2:
                guests += 1
                order_id = shop.place_order(
                    items=items,
                    guest_email=f"guest{guests}@example.net",
                    status_id=status,
                    coupon=coupon,
                )
            else:
                order_id = shop.place_order(
                    items=items,
                    customer_id=rng.choice(list(shop.customers)),
                    status_id=status,
                    coupon=coupon,
                )
            by_status["awaiting" if status == 7 else "paid"].append(order_id)
        elif roll < 0.68 and by_status["awaiting"]:
            order_id = by_status["awaiting"].pop(rng.randrange(len(by_status["awaiting"])))
            shop.set_status(order_id, 11)
            by_status["paid"].append(order_id)
        elif roll < 0.82 and by_status["paid"]:
            order_id = by_status["paid"].pop(rng.randrange(len(by_status["paid"])))
            shop.set_status(order_id, 2)
            by_status["shipped"].append(order_id)
        elif roll < 0.88 and (by_status["awaiting"] or by_status["paid"]):
            pool = by_status["awaiting"] if by_status["awaiting"] else by_status["paid"]
            shop.set_status(pool.pop(rng.randrange(len(pool))), 5)
        elif budget >= 3 and (by_status["shipped"] or by_status["paid"]):
            pool = by_status["shipped"] or by_status["paid"]
            order_id = rng.choice(pool)
            line = rng.choice(shop.order_products[order_id])
            if line["quantity_refunded"] >= line["quantity"]:
                continue
            shop.refund(
                order_id,
                items=[(line["id"], 1)],
                shipping_minor=100 if rng.random() < 0.3 else 0,
            )
            if shop.orders[order_id]["status_id"] == 4:
                pool.remove(order_id)
    return shop
