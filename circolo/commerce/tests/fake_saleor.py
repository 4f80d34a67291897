"""A fake Saleor for tests and benchmarks: an in-memory shop that renders its objects in the
shape of Circolo's subscription documents, signs deliveries as Saleor does (detached RS256
JWS, key id = RFC 7638 thumbprint, published as a JWKS), serves its GraphQL API and JWKS over
HTTP, and a shop history that produces the deliveries Saleor would send while it happens.

Shapes follow Saleor's schema (Order, OrderLine, OrderGrantedRefund, TransactionItem,
TransactionEvent, Fulfillment, OrderEvent, User, Address, Product, ProductVariant) as
selected by circolo/commerce/connectors/saleor/documents.py. Everything here is plain
Python: no database, no Django test machinery.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from circolo.commerce.connectors.saleor import signed_headers
from circolo.commerce.connectors.saleor.signatures import JWKS_PATH, hmac_signature

Signed = tuple[dict[str, str], bytes]
JSON = dict[str, Any]

T0 = dt.datetime(2026, 2, 2, 9, 0, tzinfo=dt.UTC)
CURRENCY = "EUR"
CHANNEL = {"slug": "default-channel", "currencyCode": CURRENCY}
# Tax the fake charges on top of net prices (10 %, rounded down to the cent).
TAX_PERCENT = 10


def iso(moment: dt.datetime) -> str:
    """Saleor's DateTime: ISO 8601 with microseconds and offset."""
    return moment.astimezone(dt.UTC).isoformat()


def gid(kind: str, ident: int | str) -> str:
    """A Saleor global id: base64 of "Type:pk"."""
    return base64.b64encode(f"{kind}:{ident}".encode()).decode()


def money(minor: int, currency: str = CURRENCY) -> JSON:
    """A Money object; Saleor's amount is a Float in major units."""
    return {"amount": minor / 100, "currency": currency}


def taxed(net: int, tax: int = 0, currency: str = CURRENCY) -> JSON:
    return {
        "currency": currency,
        "net": money(net, currency),
        "gross": money(net + tax, currency),
        "tax": money(tax, currency),
    }


# --------------------------------------------------------------------------- signing keys


class SigningKey:
    """An RSA key as Saleor keeps one: signs detached RS256 JWS, published as a JWK."""

    def __init__(self, private: rsa.RSAPrivateKey | None = None) -> None:
        self.private = private or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        # RFC 7638 thumbprint: SHA-256 of the required members, sorted, without spaces.
        members = json.dumps(
            {"e": public["e"], "kty": "RSA", "n": public["n"]}, separators=(",", ":")
        )
        digest = hashlib.sha256(members.encode()).digest()
        self.kid = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        self.jwk = {**public, "use": "sig", "kid": self.kid, "alg": "RS256"}

    def sign(self, body: bytes, *, kid: str | None = None) -> str:
        """Saleor-Signature for `body`: "<header>..<signature>" (jwt_manager.jws_encode)."""
        return jwt.api_jws.encode(
            body,
            key=self.private,
            algorithm="RS256",
            headers={"kid": kid or self.kid, "crit": ["b64"]},
            is_payload_detached=True,
        )


# --------------------------------------------------------------------------- shop state


def address(
    *,
    first_name: str = "Ada",
    last_name: str = "Rossi",
    city: str = "Milano",
    country: str = "IT",
    phone: str | None = None,
) -> JSON:
    return {
        "firstName": first_name,
        "lastName": last_name,
        "companyName": "",
        "streetAddress1": "Via Roma 1",
        "streetAddress2": "",
        "city": city.upper(),
        "cityArea": "",
        "postalCode": "20121",
        "country": {"code": country},
        "countryArea": "",
        "phone": phone,
    }


@dataclass
class Line:
    pk: str
    product_pk: int | None
    variant_pk: int | None
    sku: str
    name: str
    quantity: int
    unit_minor: int
    # Discount per unit (catalogue promotion or a share of an order voucher).
    unit_discount_minor: int = 0
    voucher_code: str | None = None

    @property
    def id(self) -> str:
        return gid("OrderLine", self.pk)

    @property
    def unit_after(self) -> int:
        return self.unit_minor - self.unit_discount_minor


@dataclass
class Order:
    pk: str
    number: int
    created: dt.datetime
    updated: dt.datetime
    user_pk: int | None
    email: str
    lines: list[Line]
    shipping_minor: int = 500
    status: str = "UNFULFILLED"
    charge_status: str = "NONE"
    voucher_code: str | None = None
    billing: JSON = field(default_factory=address)
    shipping: JSON = field(default_factory=address)
    metadata: dict[str, str] = field(default_factory=dict)
    fulfillments: list[JSON] = field(default_factory=list)
    events: list[JSON] = field(default_factory=list)
    transactions: list[JSON] = field(default_factory=list)
    granted_refunds: list[JSON] = field(default_factory=list)
    language: str = "IT"

    @property
    def id(self) -> str:
        return gid("Order", self.pk)


@dataclass
class Fault:
    status: int
    headers: dict[str, str]


class FakeSaleor:
    """An in-memory Saleor shop: its users, products and orders, its signing keys, and a WSGI
    app answering POST /graphql/ (the customers, products and orders queries; the channels
    and vouchers queries and the voucherCreate, voucherChannelListingUpdate and
    voucherDelete mutations) and GET /.well-known/jwks.json."""

    def __init__(
        self,
        *,
        api_url: str = "https://shop.example/graphql/",
        token: str = "app-token",  # noqa: S107
        page_size: int = 100,
    ) -> None:
        self.api_url = api_url
        self.token = token
        # The most objects a page holds (Saleor's cap is 100; smaller makes more pages).
        self.page_size = page_size
        self.keys = [SigningKey()]
        self.users: dict[int, JSON] = {}
        self.products: dict[int, JSON] = {}
        self.orders: dict[str, Order] = {}
        self._sequence = 0
        self._lock = threading.Lock()
        self.faults: list[Fault] = []
        # Requests that succeeded before the faults start (see fail()).
        self.fail_after = 0
        self.graphql_requests: list[JSON] = []
        self.jwks_requests = 0
        self.channels: list[JSON] = [
            {"id": gid("Channel", 1), "name": "Default", "isActive": True, **CHANNEL}
        ]
        self.vouchers: dict[str, JSON] = {}
        self._voucher_pk = 0
        # Late answers (see hang()): GraphQL requests to let through first, then delays.
        self.hang_after = 0
        self.hangs: list[float] = []

    # ---- ids and keys
    def next_pk(self) -> int:
        with self._lock:
            self._sequence += 1
            return self._sequence

    @property
    def key(self) -> SigningKey:
        """The key Saleor signs with now (the newest)."""
        return self.keys[-1]

    def rotate(self, *, keep_old: bool = True) -> SigningKey:
        new = SigningKey()
        self.keys = [*self.keys, new] if keep_old else [new]
        return new

    def jwks(self) -> JSON:
        return {"keys": [key.jwk for key in self.keys]}

    # ---- customers
    def user_put(
        self,
        pk: int,
        *,
        at: dt.datetime,
        email: str,
        first_name: str = "Ada",
        last_name: str = "Rossi",
        city: str = "Milano",
        country: str = "IT",
        phone: str | None = None,
        language: str = "IT",
    ) -> JSON:
        existing = self.users.get(pk)
        self.users[pk] = {
            "id": gid("User", pk),
            "email": email,
            "firstName": first_name,
            "lastName": last_name,
            "isActive": True,
            "languageCode": language,
            "dateJoined": existing["dateJoined"] if existing else iso(at),
            "updatedAt": iso(at),
            "defaultBillingAddress": address(
                first_name=first_name, last_name=last_name, city=city, country=country, phone=phone
            ),
            "defaultShippingAddress": None,
        }
        return self.users[pk]

    # ---- products
    def product_put(
        self,
        pk: int,
        *,
        at: dt.datetime,
        name: str,
        variants: list[tuple[int, str, int]],
        published: bool = True,
        translations: dict[str, str] | None = None,
    ) -> JSON:
        """A product with variants (pk, sku, price in minor units)."""
        existing = self.products.get(pk)
        translations = translations or {}
        self.products[pk] = {
            "id": gid("Product", pk),
            "name": name,
            "slug": re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"),
            "created": existing["created"] if existing else iso(at),
            "updatedAt": iso(at),
            "thumbnail": {"url": f"https://shop.example/media/thumbnails/{pk}.webp"},
            "channelListings": [{"isPublished": published, "channel": dict(CHANNEL)}],
            "variants": [
                {
                    "id": gid("ProductVariant", variant_pk),
                    "name": sku.lower(),
                    "sku": sku,
                    "channelListings": [{"channel": dict(CHANNEL), "price": money(price)}],
                }
                for variant_pk, sku, price in variants
            ],
            "translationIt": {"name": translations["it"]} if "it" in translations else None,
            "translationEs": {"name": translations["es"]} if "es" in translations else None,
            "translationZhHans": (
                {"name": translations["zh-hans"]} if "zh-hans" in translations else None
            ),
        }
        return self.products[pk]

    # ---- orders
    def order_place(
        self,
        *,
        at: dt.datetime,
        lines: list[Line],
        user_pk: int | None = None,
        email: str = "",
        voucher_code: str | None = None,
        metadata: dict[str, str] | None = None,
        shipping_minor: int = 500,
    ) -> Order:
        pk = f"{self.next_pk():08d}-0000-4000-8000-000000000000"
        number = len(self.orders) + 1001
        order = Order(
            pk=pk,
            number=number,
            created=at,
            updated=at,
            user_pk=user_pk,
            email=email or (self.users[user_pk]["email"] if user_pk in self.users else ""),
            lines=lines,
            voucher_code=voucher_code,
            metadata=dict(metadata or {}),
            shipping_minor=shipping_minor,
        )
        order.events.append(self._event("PLACED", at))
        self.orders[order.id] = order
        return order

    def _event(self, kind: str, at: dt.datetime, amount: float | None = None) -> JSON:
        return {
            "id": gid("OrderEvent", self.next_pk()),
            "date": iso(at),
            "type": kind,
            "amount": amount,
        }

    def _transaction_event(self, kind: str, at: dt.datetime, amount: int) -> JSON:
        return {
            "id": gid("TransactionEvent", self.next_pk()),
            "type": kind,
            "createdAt": iso(at),
            "amount": money(amount),
        }

    def order_pay(self, order: Order, *, at: dt.datetime) -> Order:
        """Charged in full through a payment app (transactions API)."""
        gross = self.totals(order)["gross"]
        order.transactions.append(
            {
                "id": gid("TransactionItem", self.next_pk()),
                "events": [self._transaction_event("CHARGE_SUCCESS", at, gross)],
            }
        )
        order.charge_status = "FULL"
        order.events.append(self._event("ORDER_FULLY_PAID", at))
        order.updated = at
        return order

    def order_touch(self, order: Order, *, at: dt.datetime, city: str = "Torino") -> Order:
        """An edit that changes nothing Circolo counts: a new shipping city."""
        order.shipping = {**order.shipping, "city": city.upper()}
        order.events.append(self._event("UPDATED_ADDRESS", at))
        order.updated = at
        return order

    def order_fulfil(self, order: Order, *, at: dt.datetime) -> Order:
        order.fulfillments.append(
            {"id": gid("Fulfillment", self.next_pk()), "status": "FULFILLED", "created": iso(at)}
        )
        order.events.append(self._event("FULFILLMENT_FULFILLED_ITEMS", at))
        order.status = "FULFILLED"
        order.updated = at
        return order

    def order_cancel(self, order: Order, *, at: dt.datetime) -> Order:
        order.status = "CANCELED"
        order.events.append(self._event("CANCELED", at))
        order.updated = at
        return order

    def order_refund(self, order: Order, *, at: dt.datetime, lines: list[tuple[Line, int]]) -> JSON:
        """A granted refund of some lines, refunded through the payment app: returns the
        REFUND_SUCCESS transaction event (the refund Circolo records)."""
        amount = sum(line.unit_after * quantity for line, quantity in lines)
        request = self._transaction_event("REFUND_REQUEST", at, amount)
        success = self._transaction_event("REFUND_SUCCESS", at, amount)
        if not order.transactions:
            order.transactions.append({"id": gid("TransactionItem", self.next_pk()), "events": []})
        order.transactions[0]["events"].extend([request, success])
        order.granted_refunds.append(
            {
                "id": gid("OrderGrantedRefund", self.next_pk()),
                "status": "SUCCESS",
                "createdAt": iso(at),
                "updatedAt": iso(at),
                "amount": money(amount),
                "lines": [
                    {"quantity": quantity, "orderLine": {"id": line.id}} for line, quantity in lines
                ],
                "transactionEvents": [{"id": request["id"]}, {"id": success["id"]}],
            }
        )
        order.events.append(self._event("TRANSACTION_EVENT", at))
        order.updated = at
        return success

    def totals(self, order: Order) -> dict[str, int]:
        undiscounted = sum(line.unit_minor * line.quantity for line in order.lines)
        subtotal = sum(line.unit_after * line.quantity for line in order.lines)
        net = subtotal + order.shipping_minor
        tax = net * TAX_PERCENT // 100
        return {
            "undiscounted": undiscounted + order.shipping_minor,
            "subtotal": subtotal,
            "net": net,
            "tax": tax,
            "gross": net + tax,
        }

    def order_node(self, order: Order) -> JSON:
        """The order as CircoloOrder selects it."""
        totals = self.totals(order)
        user = self.users.get(order.user_pk) if order.user_pk is not None else None
        return {
            "id": order.id,
            "number": str(order.number),
            "created": iso(order.created),
            "updatedAt": iso(order.updated),
            "status": order.status,
            "isPaid": order.charge_status in ("FULL", "OVERCHARGED"),
            "chargeStatus": order.charge_status,
            "userEmail": order.email,
            "languageCodeEnum": order.language,
            "user": (
                {k: user[k] for k in ("id", "email", "firstName", "lastName")} if user else None
            ),
            "billingAddress": copy.deepcopy(order.billing),
            "shippingAddress": copy.deepcopy(order.shipping),
            "voucherCode": order.voucher_code,
            "metadata": [{"key": k, "value": v} for k, v in order.metadata.items()],
            "subtotal": taxed(totals["subtotal"]),
            "shippingPrice": taxed(order.shipping_minor),
            "total": taxed(totals["net"], totals["tax"]),
            "undiscountedTotal": taxed(totals["undiscounted"]),
            "lines": [
                {
                    "id": line.id,
                    "productName": line.name,
                    "variantName": line.sku.lower(),
                    "productSku": line.sku,
                    "productVariantId": (
                        gid("ProductVariant", line.variant_pk) if line.variant_pk else None
                    ),
                    "quantity": line.quantity,
                    "voucherCode": line.voucher_code,
                    "variant": (
                        {
                            "id": gid("ProductVariant", line.variant_pk),
                            "product": {"id": gid("Product", line.product_pk)},
                        }
                        if line.variant_pk and line.product_pk
                        else None
                    ),
                    "unitPrice": taxed(line.unit_after),
                    "undiscountedUnitPrice": taxed(line.unit_minor),
                    "totalPrice": taxed(line.unit_after * line.quantity),
                    "undiscountedTotalPrice": taxed(line.unit_minor * line.quantity),
                }
                for line in order.lines
            ],
            "fulfillments": copy.deepcopy(order.fulfillments),
            "events": copy.deepcopy(order.events),
            "transactions": copy.deepcopy(order.transactions),
            "grantedRefunds": copy.deepcopy(order.granted_refunds),
        }

    # ---- deliveries
    def body(self, event: str, subject: JSON, *, issued_at: dt.datetime | None = None) -> bytes:
        key = "order" if event.startswith("order_") else event.split("_")[0]
        key = "user" if key == "customer" else key
        issued = issued_at or dt.datetime.fromisoformat(subject["updatedAt"])
        return json.dumps({"issuedAt": iso(issued), key: subject}).encode()

    def sign(
        self, event: str, body: bytes, *, key: SigningKey | None = None, secret: str = ""
    ) -> Signed:
        """The delivery as Saleor posts it: JWS by the shop's key, or HMAC with a secret."""
        signature = hmac_signature(secret, body) if secret else (key or self.key).sign(body)
        headers = signed_headers(
            api_url=self.api_url, external_id="", topic=event, signature=signature
        )
        return headers, body

    def delivery(
        self, event: str, subject: JSON, *, issued_at: dt.datetime | None = None
    ) -> Signed:
        return self.sign(event, self.body(event, subject, issued_at=issued_at))

    # ---- HTTP
    def fail(
        self, status: int, *, times: int = 1, after: int = 0, headers: dict[str, str] | None = None
    ) -> None:
        """Answer the GraphQL requests after the next `after` ones with `status`, `times` times."""
        self.fail_after = after
        self.faults = [Fault(status, dict(headers or {})) for _ in range(times)]

    def hang(self, seconds: float, *, times: int = 1, after: int = 0) -> None:
        """Answer the GraphQL requests after the next `after` ones `seconds` late, `times`
        times, their work done (a client with a shorter timeout sees a timeout, the shop the
        change)."""
        self.hang_after = after
        self.hangs = [seconds] * times

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        status, headers, body = self.answer(
            method=environ.get("REQUEST_METHOD", "GET"),
            path=environ.get("PATH_INFO", "/"),
            authorization=environ.get("HTTP_AUTHORIZATION", ""),
            body=environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)),
        )
        reasons = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 429: "Too Many Requests"}
        start_response(
            f"{status} {reasons.get(status, 'Error')}",
            [("Content-Type", "application/json"), *headers.items()],
        )
        return [body]

    def answer(
        self, *, method: str, path: str, authorization: str, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if path == JWKS_PATH and method == "GET":
            with self._lock:
                self.jwks_requests += 1
            return 200, {}, json.dumps(self.jwks()).encode()
        if path.rstrip("/") != "/graphql" or method != "POST":
            return 404, {}, b'{"errors": [{"message": "Not found"}]}'
        late = 0.0
        with self._lock:
            if self.hang_after > 0:
                self.hang_after -= 1
            elif self.hangs:
                late = self.hangs.pop(0)
        if late:
            time.sleep(late)
        with self._lock:
            if self.fail_after > 0:
                self.fail_after -= 1
            elif self.faults:
                fault = self.faults.pop(0)
                return fault.status, fault.headers, b'{"errors": [{"message": "busy"}]}'
        request = json.loads(body or b"{}")
        self.graphql_requests.append(request)
        return 200, {}, json.dumps(self.graphql(request, authorization)).encode()

    def graphql(self, request: JSON, authorization: str) -> JSON:
        query = str(request.get("query") or "")
        variables = request.get("variables") or {}
        discounts = re.search(
            r"\b(voucherCreate|voucherChannelListingUpdate|voucherDelete|vouchers|channels)\b",
            query,
        )
        if discounts is not None:
            return self._discounts(discounts.group(1), variables, authorization)
        match = re.search(r"\b(customers|products|orders)\(first:", query)
        if match is None:
            return {"errors": [{"message": "Unknown query."}], "data": None}
        resource = match.group(1)
        permission = {
            "customers": "MANAGE_USERS",
            "products": "MANAGE_PRODUCTS",
            "orders": "MANAGE_ORDERS",
        }[resource]
        if authorization != f"Bearer {self.token}":
            return {
                "errors": [
                    {
                        "message": "To access this path, you need one of the following "
                        f"permissions: {permission}",
                        "extensions": {"exception": {"code": "PermissionDenied"}},
                    }
                ],
                "data": {resource: None},
            }
        first = variables.get("first")
        if not isinstance(first, int) or not 0 < first <= 100:
            return {
                "errors": [{"message": "The limit for 'first' is 100."}],
                "data": {resource: None},
            }
        nodes = self.nodes(resource)
        gte = ((variables.get("filter") or {}).get("updatedAt") or {}).get("gte")
        if gte:
            since = dt.datetime.fromisoformat(gte)
            nodes = [n for n in nodes if dt.datetime.fromisoformat(n["updatedAt"]) >= since]
        start = 0
        if variables.get("after"):
            start = int(json.loads(base64.b64decode(variables["after"]))[0]) + 1
        size = min(first, self.page_size)
        window = nodes[start : start + size]
        end = start + len(window) - 1
        return {
            "data": {
                resource: {
                    "pageInfo": {
                        "hasNextPage": start + size < len(nodes),
                        "endCursor": _cursor(end) if window else None,
                    },
                    "edges": [{"node": node} for node in window],
                }
            }
        }

    def nodes(self, resource: str) -> list[JSON]:
        """Every object of a resource in the queries' sort order (created, or number)."""
        if resource == "customers":
            users = sorted(self.users.items(), key=lambda item: (item[1]["dateJoined"], item[0]))
            return [copy.deepcopy(user) for _pk, user in users]
        if resource == "products":
            products = sorted(self.products.items(), key=lambda item: (item[1]["created"], item[0]))
            return [copy.deepcopy(product) for _pk, product in products]
        orders = sorted(self.orders.values(), key=lambda order: order.number)
        return [self.order_node(order) for order in orders]

    # ---- discounts
    def put_voucher(self, code: str, *, name: str, usage_limit: int | None = None) -> JSON:
        """A voucher as a merchant would make it in the dashboard."""
        with self._lock:
            return self._voucher_make(
                {
                    "name": name,
                    "addCodes": [code],
                    "type": "ENTIRE_ORDER",
                    "usageLimit": usage_limit,
                }
            )

    def _voucher_make(self, sent: JSON) -> JSON:
        self._voucher_pk += 1
        voucher_id = gid("Voucher", self._voucher_pk)
        made = {
            "id": voucher_id,
            "name": sent.get("name"),
            "type": sent.get("type") or "ENTIRE_ORDER",
            "discountValueType": sent.get("discountValueType") or "FIXED",
            "usageLimit": sent.get("usageLimit"),
            "used": 0,
            "applyOncePerCustomer": bool(sent.get("applyOncePerCustomer")),
            "applyOncePerOrder": bool(sent.get("applyOncePerOrder")),
            "onlyForStaff": bool(sent.get("onlyForStaff")),
            "singleUse": bool(sent.get("singleUse")),
            "startDate": sent.get("startDate") or iso(T0),
            "endDate": sent.get("endDate"),
            "products": list(sent.get("products") or []),
            "codes": [str(code).strip() for code in sent.get("addCodes") or []],
            "channelListings": [],
        }
        self.vouchers[voucher_id] = made
        return copy.deepcopy(made)

    def _discounts(self, operation: str, variables: JSON, authorization: str) -> JSON:
        if authorization != f"Bearer {self.token}":
            if operation == "channels":
                message = "To access this path, you need to be authenticated as an app."
            else:
                message = "To access this path, you need one of the following permissions: "
                message += "MANAGE_DISCOUNTS"
            return {
                "errors": [
                    {"message": message, "extensions": {"exception": {"code": "PermissionDenied"}}}
                ],
                "data": {operation: None},
            }
        if operation == "channels":
            return {"data": {"channels": copy.deepcopy(self.channels)}}
        if operation == "vouchers":
            search = str((variables.get("filter") or {}).get("search") or variables.get("search"))
            found = [
                v for v in self.vouchers.values()
                if search.lower() in str(v["name"] or "").lower()
                or any(search.lower() in code.lower() for code in v["codes"])
            ]  # fmt: skip
            edges = [{"node": _voucher_node(v)} for v in found]
            return {"data": {"vouchers": {"edges": edges}}}
        if operation == "voucherCreate":
            return {"data": {"voucherCreate": self._voucher_create(variables.get("input") or {})}}
        voucher = self.vouchers.get(str(variables.get("id")))
        if voucher is None:
            error = {"field": "id", "message": "Couldn't resolve to a node.", "code": "NOT_FOUND"}
            return {"data": {operation: {"voucher": None, "errors": [error]}}}
        if operation == "voucherDelete":
            del self.vouchers[voucher["id"]]
            return {"data": {"voucherDelete": {"voucher": {"id": voucher["id"]}, "errors": []}}}
        listing = self._voucher_listing(voucher, variables.get("input") or {})
        return {"data": {"voucherChannelListingUpdate": listing}}

    def _voucher_create(self, sent: JSON) -> JSON:
        codes = [str(code).strip() for code in sent.get("addCodes") or []]
        taken = [c for c in codes if any(c in v["codes"] for v in self.vouchers.values())]
        if taken:
            error = {
                "field": "codes",
                "message": "Promo code already exists.",
                "code": "ALREADY_EXISTS",
                "voucherCodes": taken,
            }
            return {"voucher": None, "errors": [error]}
        known = {product["id"] for product in self.products.values()}
        unknown = [ident for ident in sent.get("products") or [] if ident not in known]
        if unknown:
            error = {
                "field": "products",
                "message": f"Couldn't resolve to a node: {unknown[0]}",
                "code": "GRAPHQL_ERROR",
            }
            return {"voucher": None, "errors": [error]}
        made = self._voucher_make(sent)
        node = {"id": made["id"], "name": made["name"], "usageLimit": made["usageLimit"]}
        return {"voucher": node, "errors": []}

    def _voucher_listing(self, voucher: JSON, sent: JSON) -> JSON:
        channels = {channel["id"]: channel for channel in self.channels}
        for entry in sent.get("addChannels") or []:
            channel = channels.get(entry.get("channelId"))
            if channel is None:
                error = {"field": "channelId", "message": "Couldn't resolve to a node.",
                         "code": "NOT_FOUND", "channels": [entry.get("channelId")]}  # fmt: skip
                return {"voucher": None, "errors": [error]}
            value = entry.get("discountValue")
            if value is None or (
                voucher["discountValueType"] == "PERCENTAGE" and float(value) > 100
            ):
                error = {"field": "discountValue", "message": "Invalid discount value.",
                         "code": "INVALID", "channels": [channel["id"]]}  # fmt: skip
                return {"voucher": None, "errors": [error]}
        for entry in sent.get("addChannels") or []:
            channel = channels[entry["channelId"]]
            voucher["channelListings"] = [
                item
                for item in voucher["channelListings"]
                if item["channel"]["id"] != channel["id"]
            ] + [
                {
                    "channel": {key: channel[key] for key in ("id", "slug", "currencyCode")},
                    "discountValue": entry["discountValue"],
                    "minSpent": entry.get("minAmountSpent"),
                }
            ]
        return {"voucher": {"id": voucher["id"]}, "errors": []}


def _voucher_node(voucher: JSON) -> JSON:
    return {
        "id": voucher["id"],
        "name": voucher["name"],
        "usageLimit": voucher["usageLimit"],
        "codes": {"edges": [{"node": {"code": code}} for code in voucher["codes"]]},
    }


def _cursor(index: int) -> str:
    # Saleor's cursors are base64 of the sort key's values; the fake's key is a position.
    return base64.b64encode(json.dumps([str(index)]).encode()).decode()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def serve(shop: FakeSaleor) -> Iterator[str]:
    """Serve `shop` on a loopback port; yields its API address (…/graphql/) and sets
    shop.api_url to it, so deliveries name the served shop."""
    server: WSGIServer = make_server("127.0.0.1", 0, shop, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    shop.api_url = f"http://127.0.0.1:{server.server_port}/graphql/"
    try:
        yield shop.api_url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def as_client_headers(headers: dict[str, str]) -> dict[str, str]:
    """The headers as keyword arguments of django.test.Client.post(headers=...)."""
    return {key: value for key, value in headers.items() if key != "Content-Type"}


# --------------------------------------------------------------------------- a shop's life


class ShopHistory:
    """A shop's life, step by step: each step changes the shop and returns the deliveries
    Saleor sends for it (event name and body, signed by the shop's current key)."""

    def __init__(self, shop: FakeSaleor, *, seed: int = 1, start: dt.datetime = T0) -> None:
        self.shop = shop
        self.rng = random.Random(seed)
        self.now = start
        self.user_pks: list[int] = []
        self.product_pks: list[int] = []
        self.variants: list[tuple[int, int, str, int]] = []  # product, variant, sku, price

    def tick(self) -> dt.datetime:
        self.now += dt.timedelta(
            seconds=self.rng.randint(1, 90), microseconds=self.rng.randint(0, 999)
        )
        return self.now

    def customer_create(self) -> list[Signed]:
        pk = self.shop.next_pk()
        self.user_pks.append(pk)
        user = self.shop.user_put(
            pk,
            at=self.tick(),
            email=f"customer{pk}@example.com",
            first_name=self.rng.choice(["Ada", "Bruno", "Chiara", "Dario", "Elena"]),
            last_name=self.rng.choice(["Rossi", "Bianchi", "Verdi"]),
            city=self.rng.choice(["Milano", "Roma", "Napoli"]),
            phone=f"+3934{pk:08d}" if pk % 3 == 0 else None,
        )
        return [self.shop.delivery("customer_created", user)]

    def customer_update(self) -> list[Signed]:
        if not self.user_pks:
            return self.customer_create()
        pk = self.rng.choice(self.user_pks)
        user = self.shop.users[pk]
        updated = self.shop.user_put(
            pk,
            at=self.tick(),
            email=user["email"],
            first_name=user["firstName"],
            last_name=user["lastName"],
            city=self.rng.choice(["Torino", "Bologna", "Firenze"]),
            phone=user["defaultBillingAddress"]["phone"],
        )
        return [self.shop.delivery("customer_updated", updated)]

    def product_create(self) -> list[Signed]:
        pk = self.shop.next_pk()
        variants = []
        for _n in range(self.rng.randint(1, 3)):
            variant_pk = self.shop.next_pk()
            price = self.rng.choice([990, 1500, 2450, 4999])
            variants.append((variant_pk, f"SKU-{variant_pk}", price))
            self.variants.append((pk, variant_pk, f"SKU-{variant_pk}", price))
        self.product_pks.append(pk)
        product = self.shop.product_put(
            pk,
            at=self.tick(),
            name=f"Product {pk}",
            variants=variants,
            translations={"it": f"Prodotto {pk}"},
        )
        return [self.shop.delivery("product_created", product)]

    def product_update(self) -> list[Signed]:
        if not self.product_pks:
            return self.product_create()
        pk = self.rng.choice(self.product_pks)
        current = self.shop.products[pk]
        variants = [
            (
                int(base64.b64decode(v["id"]).decode().split(":")[1]),
                v["sku"],
                round(v["channelListings"][0]["price"]["amount"] * 100) + 100,
            )
            for v in current["variants"]
        ]
        product = self.shop.product_put(
            pk,
            at=self.tick(),
            name=f"{current['name']} v2",
            variants=variants,
            published=self.rng.random() > 0.1,
        )
        return [self.shop.delivery("product_updated", product)]

    def order_create(self) -> list[Signed]:
        if not self.variants:
            self.product_create()
        lines = []
        for _n in range(self.rng.randint(1, 3)):
            product_pk, variant_pk, sku, price = self.rng.choice(self.variants)
            if any(line.variant_pk == variant_pk for line in lines):
                continue
            lines.append(
                Line(
                    pk=f"{self.shop.next_pk():08d}-1111-4000-8000-000000000000",
                    product_pk=product_pk,
                    variant_pk=variant_pk,
                    sku=sku,
                    name=f"Product {product_pk}",
                    quantity=self.rng.randint(1, 3),
                    unit_minor=price,
                    unit_discount_minor=self.rng.choice([0, 0, 100]),
                )
            )
        guest = not self.user_pks or self.rng.random() < 0.2
        user_pk = None if guest else self.rng.choice(self.user_pks)
        email = f"guest{self.shop.next_pk()}@example.com" if guest else ""
        voucher = "WELCOME10" if self.rng.random() < 0.2 else None
        order = self.shop.order_place(
            at=self.tick(),
            lines=lines,
            user_pk=user_pk,
            email=email,
            voucher_code=voucher,
            metadata={"landing_site": "/?ref=friend7"} if self.rng.random() < 0.1 else None,
        )
        return [self.shop.delivery("order_created", self.shop.order_node(order))]

    def _pick(self, test: Callable[[Order], bool]) -> Order | None:
        candidates = [order for order in self.shop.orders.values() if test(order)]
        return self.rng.choice(candidates) if candidates else None

    def _send(self, event: str, order: Order) -> list[Signed]:
        return [self.shop.delivery(event, self.shop.order_node(order))]

    def order_pay(self) -> list[Signed]:
        order = self._pick(lambda o: o.charge_status == "NONE" and o.status == "UNFULFILLED")
        if order is None:
            return self.order_create()
        return self._send("order_fully_paid", self.shop.order_pay(order, at=self.tick()))

    def order_update(self) -> list[Signed]:
        order = self._pick(lambda o: o.status != "CANCELED")
        if order is None:
            return self.order_create()
        return self._send("order_updated", self.shop.order_touch(order, at=self.tick()))

    def order_fulfil(self) -> list[Signed]:
        order = self._pick(lambda o: o.charge_status == "FULL" and o.status == "UNFULFILLED")
        if order is None:
            return self.order_pay()
        return self._send("order_fulfilled", self.shop.order_fulfil(order, at=self.tick()))

    def order_cancel(self) -> list[Signed]:
        order = self._pick(lambda o: o.charge_status == "NONE" and o.status == "UNFULFILLED")
        if order is None:
            return self.order_create()
        return self._send("order_cancelled", self.shop.order_cancel(order, at=self.tick()))

    def order_refund(self) -> list[Signed]:
        def refundable(order: Order) -> bool:
            return order.status == "FULFILLED" and len(order.granted_refunds) < len(order.lines)

        order = self._pick(refundable)
        if order is None:
            return self.order_fulfil()
        line = order.lines[len(order.granted_refunds)]
        self.shop.order_refund(order, at=self.tick(), lines=[(line, line.quantity)])
        return self._send("order_refunded", order)

    STEPS: tuple[tuple[str, float], ...] = (
        ("customer_create", 0.08),
        ("customer_update", 0.03),
        ("product_create", 0.03),
        ("product_update", 0.03),
        ("order_create", 0.25),
        ("order_pay", 0.2),
        ("order_update", 0.12),
        ("order_fulfil", 0.15),
        ("order_cancel", 0.04),
        ("order_refund", 0.07),
    )

    def step(self) -> list[Signed]:
        names = [name for name, _weight in self.STEPS]
        weights = [weight for _name, weight in self.STEPS]
        action: Callable[[], list[Signed]] = getattr(self, self.rng.choices(names, weights)[0])
        return action()

    def deliveries(self, count: int) -> list[Signed]:
        """Exactly `count` deliveries of a shop's life, oldest first."""
        out: list[Signed] = []
        while len(out) < count:
            out.extend(self.step())
        return out[:count]
