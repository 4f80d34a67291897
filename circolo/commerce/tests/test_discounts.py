"""Single-use discount codes made in a connected store: each platform's request, its refusals
and outages, lost answers, and the checks made before any request."""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.utils import timezone

from circolo.commerce.connectors.base import connector_for
from circolo.commerce.discounts import (
    AMOUNT_OFF,
    FREE_PRODUCT,
    FREE_SHIPPING,
    KINDS,
    PERCENT_OFF,
    CreatedDiscount,
    DiscountError,
    DiscountSpec,
    discount_create,
    discounts_supported,
)
from circolo.commerce.models import Store
from circolo.commerce.tests import fake_bigcommerce, fake_saleor, fake_shopify, fake_woocommerce
from circolo.testing.commerce import make_store

pytestmark = pytest.mark.django_db

EMAIL = "ada@example.com"
TITLE = "Circolo: 10 € off"
# A fake answers this late; the client gives up before (see `quick`), not long before.
LATE = 0.45
TIMEOUT = 0.3
PLATFORMS = ("shopify", "woocommerce", "bigcommerce", "saleor")


def _ends() -> dt.datetime:
    return (timezone.now() + dt.timedelta(days=90)).replace(microsecond=0)


def _spec(kind: str = AMOUNT_OFF, **over: Any) -> DiscountSpec:
    values: dict[str, Any] = {
        "code": "R-7KQ2MX9P",
        "kind": kind,
        "amount_minor": 1000 if kind == AMOUNT_OFF else 0,
        "percent": 15 if kind == PERCENT_OFF else 0,
        "currency": "EUR",
        "min_order_minor": 4000,
        "ends_at": _ends(),
        "customer_email": EMAIL,
        "title": TITLE,
    }
    values.update(over)
    return DiscountSpec(**values)


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retries back off through the connectors' sleep: record the waits, skip the sleeping."""
    waits: list[float] = []
    for platform in PLATFORMS:
        monkeypatch.setattr(connector_for(platform), "sleep", waits.append)
    monkeypatch.setattr(connector_for("bigcommerce"), "transport", None)
    monkeypatch.setattr(logging.getLogger("httpx"), "level", logging.WARNING)
    return waits


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients that give up on an answer after TIMEOUT seconds, three attempts at most."""
    for platform in PLATFORMS:
        connector = connector_for(platform)
        build = type(connector).client

        def client(*, store: Store, _connector: Any = connector, _build: Any = build) -> Any:
            made = _build(_connector, store=store)
            made.http.timeout = httpx.Timeout(TIMEOUT)
            made.attempts = 3
            return made

        monkeypatch.setattr(connector, "client", client)


# --------------------------------------------------------------------------- the fake shops


class Shop(ABC):
    """One platform's fake shop behind a common face, for the tests every platform passes."""

    platform = ""

    @abstractmethod
    @contextmanager
    def store(self, workspace: Any) -> Iterator[Store]:
        """A store of `workspace` connected to the fake shop, served for the block."""

    @abstractmethod
    def product(self, price_minor: int) -> str:
        """A product's id in the shop."""

    @abstractmethod
    def customer(self, email: str) -> None:
        """A customer with `email` in the shop."""

    @abstractmethod
    def discounts(self, code: str) -> list[dict[str, Any]]:
        """Every discount holding `code`, as the shop keeps it."""

    @abstractmethod
    def someone_elses(self, code: str) -> None:
        """A discount with `code` the merchant made."""

    @abstractmethod
    def fail(self, *, after: int, times: int, status: int) -> None:
        """Answer `status` to `times` requests after the next `after` ones."""

    @abstractmethod
    def hang(self, *, after: int, times: int) -> None:
        """Answer too late to `times` requests after the next `after` ones."""

    @abstractmethod
    def looked_up(self) -> bool:
        """Whether the shop was asked who holds a code."""

    # How many requests an amount_off creation without a customer sends before its POST.
    before_create = 0
    # What the shop answers a duplicate code (part of its message).
    duplicate_message = ""


class ShopifyShop(Shop):
    platform = "shopify"
    before_create = 1  # POST price_rules.json; the code's POST comes second
    duplicate_message = "must be unique"

    def __init__(self) -> None:
        self.fake = fake_shopify.FakeShop()

    @contextmanager
    def store(self, workspace: Any) -> Iterator[Store]:
        with fake_shopify.serve(self.fake) as url:
            yield make_store(
                workspace,
                platform="shopify",
                api_url=url,
                external_id=self.fake.domain,
                credentials={"access_token": self.fake.token},
            )

    def product(self, price_minor: int) -> str:
        cheap = fake_shopify.variant(39072856, product_id=632910392, sku="TEA-50", price="4.50")
        dear = fake_shopify.variant(
            39072857,
            product_id=632910392,
            sku="TEA-500",
            price=str(Decimal(price_minor) / 100),
        )
        self.fake.put(
            "products",
            fake_shopify.product(
                632910392, title="Sencha", handle="sencha", variants=[cheap, dear]
            ),
        )
        return "632910392"

    def customer(self, email: str) -> None:
        self.fake.put("customers", fake_shopify.customer(207119551, email=email))

    def discounts(self, code: str) -> list[dict[str, Any]]:
        return [
            {**self.fake.price_rules[made["price_rule_id"]], "code": made["code"]}
            for made in self.fake.discount_codes.values()
            if made["code"].lower() == code.lower()
        ]

    def someone_elses(self, code: str) -> None:
        self.fake.put_discount(code, title="Spring sale")

    def fail(self, *, after: int, times: int, status: int) -> None:
        self.fake.fail(after=self.fake.requests + after, times=times, status=status)

    def hang(self, *, after: int, times: int) -> None:
        self.fake.hang(after=self.fake.requests + after, times=times, seconds=LATE)

    def looked_up(self) -> bool:
        return any(path.endswith("/discount_codes/lookup.json") for path in self.fake.paths)


class WooShop(Shop):
    platform = "woocommerce"
    duplicate_message = "The coupon code already exists"

    def __init__(self) -> None:
        self.fake = fake_woocommerce.FakeShop()

    @contextmanager
    def store(self, workspace: Any) -> Iterator[Store]:
        with fake_woocommerce.serve(self.fake) as url:
            yield make_store(
                workspace,
                platform="woocommerce",
                api_url=url,
                credentials={
                    "consumer_key": self.fake.key,
                    "consumer_secret": self.fake.secret,
                },
            )

    def product(self, price_minor: int) -> str:
        return "799"

    def customer(self, email: str) -> None:
        return None

    def discounts(self, code: str) -> list[dict[str, Any]]:
        return [c for c in self.fake.coupons.values() if c["code"] == code.lower()]

    def someone_elses(self, code: str) -> None:
        self.fake.put_coupon(code, description="Spring sale")

    def fail(self, *, after: int, times: int, status: int) -> None:
        self.fake.fail(after=self.fake.requests + after, times=times, status=status)

    def hang(self, *, after: int, times: int) -> None:
        self.fake.hang(after=self.fake.requests + after, times=times, seconds=LATE)

    def looked_up(self) -> bool:
        # Creating is one POST; a second request to the coupons is the look-up.
        return sum(path.endswith("/coupons") for path in self.fake.paths) > 2


class BigCommerceShop(Shop):
    platform = "bigcommerce"
    duplicate_message = "must be unique"

    def __init__(self) -> None:
        self.fake = fake_bigcommerce.FakeShop()

    @contextmanager
    def store(self, workspace: Any) -> Iterator[Store]:
        with fake_bigcommerce.serve(self.fake) as url:
            yield make_store(
                workspace,
                platform="bigcommerce",
                api_url=fake_bigcommerce.api_path(url),
                credentials={"access_token": self.fake.access_token},
            )

    def product(self, price_minor: int) -> str:
        ident = self.fake.add_product(
            name="Sencha",
            variants=[("TEA-50", 450, "50 g"), ("TEA-500", price_minor, "500 g")],
        )
        return str(ident)

    def customer(self, email: str) -> None:
        return None

    def discounts(self, code: str) -> list[dict[str, Any]]:
        return [c for c in self.fake.store_coupons.values() if c["code"].lower() == code.lower()]

    def someone_elses(self, code: str) -> None:
        self.fake.put_coupon(code, name="Spring sale")

    def fail(self, *, after: int, times: int, status: int) -> None:
        # The fake fails every request after the next `after` until told otherwise.
        self.fake.fail_after = after
        self.fake.fail_status = status

    def hang(self, *, after: int, times: int) -> None:
        self.fake.hang_after = after
        self.fake.hang_times = times
        self.fake.hang_seconds = LATE

    def looked_up(self) -> bool:
        return any(path.startswith(f"/stores/{self.fake.store_hash}/v2/coupons?code=")
                   for path in self.fake.requests)  # fmt: skip


class SaleorShop(Shop):
    platform = "saleor"
    before_create = 1  # the channels query
    duplicate_message = "Promo code already exists"

    def __init__(self) -> None:
        self.fake = fake_saleor.FakeSaleor()

    @contextmanager
    def store(self, workspace: Any) -> Iterator[Store]:
        with fake_saleor.serve(self.fake) as url:
            yield make_store(
                workspace,
                platform="saleor",
                secret="",
                api_url=url,
                credentials={"token": self.fake.token},
            )

    def product(self, price_minor: int) -> str:
        made = self.fake.product_put(
            10, at=fake_saleor.T0, name="Sencha", variants=[(11, "TEA-50", price_minor)]
        )
        return str(made["id"])

    def customer(self, email: str) -> None:
        return None

    def discounts(self, code: str) -> list[dict[str, Any]]:
        return [v for v in self.fake.vouchers.values() if code in v["codes"]]

    def someone_elses(self, code: str) -> None:
        self.fake.put_voucher(code, name="Spring sale")

    def fail(self, *, after: int, times: int, status: int) -> None:
        self.fake.fail(status, times=times, after=after)

    def hang(self, *, after: int, times: int) -> None:
        self.fake.hang(LATE, times=times, after=after)

    def looked_up(self) -> bool:
        return any("vouchers(" in str(r.get("query")) for r in self.fake.graphql_requests)


SHOPS = {
    "shopify": ShopifyShop,
    "woocommerce": WooShop,
    "bigcommerce": BigCommerceShop,
    "saleor": SaleorShop,
}


@pytest.fixture(params=PLATFORMS)
def shop(request: pytest.FixtureRequest) -> Shop:
    return SHOPS[request.param]()


# --------------------------------------------------------------------------- every platform


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_makes_one_discount_usable_once(workspace: Any, shop: Shop, kind: str) -> None:
    with shop.store(workspace) as store:
        product = shop.product(2400) if kind == FREE_PRODUCT else ""
        spec = _spec(kind, product_external_id=product)
        created = discount_create(store=store, spec=spec)
    assert created.code == spec.code
    assert created.external_id
    (held,) = shop.discounts(spec.code)
    assert _usage_limit(shop.platform, held) == 1


def _usage_limit(platform: str, held: dict[str, Any]) -> int | None:
    key = {
        "shopify": "usage_limit",
        "woocommerce": "usage_limit",
        "bigcommerce": "max_uses",
        "saleor": "usageLimit",
    }[platform]
    value = held[key]
    return int(value) if value is not None else None


def test_a_code_someone_else_made_is_refused_with_the_platforms_message(
    workspace: Any, shop: Shop
) -> None:
    shop.someone_elses("R-7KQ2MX9P")
    with shop.store(workspace) as store, pytest.raises(DiscountError) as caught:
        discount_create(store=store, spec=_spec(customer_email=""))
    assert caught.value.retryable is False
    assert shop.duplicate_message in caught.value.message
    assert len(shop.discounts("R-7KQ2MX9P")) == 1
    if shop.platform == "shopify":
        # The price rule made for the refused code went away again.
        assert len(shop.fake.price_rules) == 1  # type: ignore[attr-defined]


def test_server_errors_are_retryable(workspace: Any, shop: Shop, _no_waiting: list[float]) -> None:
    with shop.store(workspace) as store:
        shop.fail(after=0, times=20, status=500)
        with pytest.raises(DiscountError) as caught:
            discount_create(store=store, spec=_spec(customer_email=""))
    assert caught.value.retryable is True
    assert "HTTP 500" in caught.value.message
    assert len(_no_waiting) == 5  # ApiClient's six attempts
    assert shop.discounts("R-7KQ2MX9P") == []


def test_a_lost_answer_is_recognised_on_the_retry(workspace: Any, shop: Shop, quick: None) -> None:
    """The create request times out after the shop made the discount: the client's retry
    hears "the code exists", finds the discount is its own, and answers with it."""
    with shop.store(workspace) as store:
        shop.hang(after=shop.before_create, times=1)
        created = discount_create(store=store, spec=_spec(customer_email=""))
    (held,) = shop.discounts("R-7KQ2MX9P")
    assert shop.looked_up()
    assert created.code == "R-7KQ2MX9P"
    assert created.external_id == str(held["id"])
    if shop.platform == "saleor":
        assert [item["discountValue"] for item in held["channelListings"]] == ["10.00"]


def test_timeouts_are_retryable_and_the_next_attempt_ends_with_one_discount(
    workspace: Any, shop: Shop, quick: None
) -> None:
    with shop.store(workspace) as store:
        shop.hang(after=shop.before_create, times=3)
        with pytest.raises(DiscountError) as caught:
            discount_create(store=store, spec=_spec(customer_email=""))
        assert caught.value.retryable is True
        assert "Timeout" in caught.value.message
        again = discount_create(store=store, spec=_spec(customer_email=""))
    (held,) = shop.discounts("R-7KQ2MX9P")
    assert again.external_id == str(held["id"])


def test_throttling_waits_as_asked_then_succeeds(
    workspace: Any, shop: Shop, _no_waiting: list[float]
) -> None:
    with shop.store(workspace) as store:
        if shop.platform == "bigcommerce":
            shop.fake.throttle = 1  # type: ignore[attr-defined]
        else:
            shop.fail(after=0, times=1, status=429)
        created = discount_create(store=store, spec=_spec(customer_email=""))
    assert created.code == "R-7KQ2MX9P"
    assert len(_no_waiting) == 1
    assert len(shop.discounts("R-7KQ2MX9P")) == 1


def test_wrong_credentials_are_not_retryable(workspace: Any, shop: Shop) -> None:
    with shop.store(workspace) as store:
        credentials = dict.fromkeys(store.credentials, "wrong")
        store.credentials = credentials
        with pytest.raises(DiscountError) as caught:
            discount_create(store=store, spec=_spec(customer_email=""))
    assert caught.value.retryable is False
    assert shop.discounts("R-7KQ2MX9P") == []


def test_missing_credentials_say_the_store_is_not_set_up(workspace: Any, shop: Shop) -> None:
    with shop.store(workspace) as store:
        store.credentials = {}
        with pytest.raises(DiscountError) as caught:
            discount_create(store=store, spec=_spec())
    assert caught.value.retryable is False
    assert "not set up" in caught.value.message


def test_every_platform_supports_discounts_and_file_stores_do_not(workspace: Any) -> None:
    for platform in PLATFORMS:
        assert discounts_supported(store=make_store(workspace, platform=platform)) is True
    assert discounts_supported(store=make_store(workspace, platform="file")) is False


# --------------------------------------------------------------------------- before any request


def test_a_file_store_is_refused(workspace: Any) -> None:
    store = make_store(workspace, platform="file", name="Spreadsheet")
    with pytest.raises(DiscountError) as caught:
        discount_create(store=store, spec=_spec())
    assert caught.value.retryable is False
    assert "Spreadsheet" in caught.value.message
    assert "cannot make discount codes" in caught.value.message


@pytest.mark.parametrize("status", [Store.Status.PAUSED, Store.Status.DISCONNECTED])
def test_a_store_that_is_not_active_is_refused(workspace: Any, status: str) -> None:
    shop = ShopifyShop()
    with shop.store(workspace) as store:
        store.status = status
        store.save(update_fields=["status"])
        with pytest.raises(DiscountError) as caught:
            discount_create(store=store, spec=_spec())
    assert caught.value.retryable is False
    assert str(Store.Status(status).label).lower() in caught.value.message
    assert shop.fake.requests == 0


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"kind": "gift_card"}, "“gift_card” is not a kind of discount"),
        ({"code": ""}, "The code is empty"),
        ({"code": "R" * 51}, "51 characters long; the most a store accepts is 50"),
        ({"code": "R-7KQ 2M/X"}, "not “ ” “/”"),
        ({"code": "SCONTO€"}, "not “€”"),
        ({"amount_minor": 0}, "The amount off must be more than zero"),
        ({"amount_minor": -500}, "The amount off must be more than zero"),
        ({"kind": PERCENT_OFF, "percent": 0}, "from 1 to 100"),
        ({"kind": PERCENT_OFF, "percent": 101}, "from 1 to 100"),
        ({"kind": FREE_PRODUCT, "product_external_id": " "}, "needs the product's id"),
        ({"min_order_minor": -1}, "The minimum order cannot be negative"),
        ({"currency": "USD"}, "The store sells in EUR; the discount is in USD"),
        ({"ends_at": dt.datetime(2030, 1, 1)}, "needs a time zone"),
        ({"ends_at": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)}, "is in the past"),
        ({"customer_email": "ada@"}, "“ada@” is not an email address"),
    ],
)
def test_a_bad_spec_is_refused_naming_the_problem(
    workspace: Any, over: dict[str, Any], message: str
) -> None:
    shop = ShopifyShop()
    with shop.store(workspace) as store:
        with pytest.raises(DiscountError) as caught:
            discount_create(store=store, spec=_spec(**over))
        assert shop.fake.requests == 0
    assert message in caught.value.message
    assert caught.value.retryable is False


def test_an_empty_currency_is_the_stores(workspace: Any) -> None:
    shop = ShopifyShop()
    with shop.store(workspace) as store:
        discount_create(store=store, spec=_spec(currency="", customer_email=""))
    (rule,) = shop.discounts("R-7KQ2MX9P")
    assert rule["value"] == "-10.00"


# --------------------------------------------------------------------------- Shopify


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (
            AMOUNT_OFF,
            {"target_type": "line_item", "target_selection": "all",
             "allocation_method": "across", "value_type": "fixed_amount", "value": "-10.00"},
        ),
        (
            PERCENT_OFF,
            {"target_type": "line_item", "target_selection": "all",
             "allocation_method": "across", "value_type": "percentage", "value": "-15"},
        ),
        (
            FREE_SHIPPING,
            {"target_type": "shipping_line", "target_selection": "all",
             "allocation_method": "each", "value_type": "percentage", "value": "-100.0"},
        ),
        (
            FREE_PRODUCT,
            {"target_type": "line_item", "target_selection": "entitled",
             "entitled_product_ids": [632910392], "allocation_method": "across",
             "value_type": "fixed_amount", "value": "-24.00"},
        ),
    ],
)  # fmt: skip
def test_shopify_price_rule_of_each_kind(
    workspace: Any, kind: str, expected: dict[str, Any]
) -> None:
    shop = ShopifyShop()
    shop.customer(EMAIL)
    spec = _spec(kind)
    with shop.store(workspace) as store:
        if kind == FREE_PRODUCT:
            spec = _spec(kind, product_external_id=shop.product(2400))
        created = discount_create(store=store, spec=spec)
    (rule,) = shop.discounts(spec.code)
    assert created == CreatedDiscount(code="R-7KQ2MX9P", external_id=str(rule["id"]))
    assert {key: rule[key] for key in expected} == expected
    assert rule["title"] == TITLE
    assert rule["usage_limit"] == 1
    assert rule["once_per_customer"] is True
    assert rule["customer_selection"] == "prerequisite"
    assert rule["prerequisite_customer_ids"] == [207119551]
    assert rule["prerequisite_subtotal_range"] == {"greater_than_or_equal_to": "40.00"}
    assert dt.datetime.fromisoformat(rule["ends_at"]) == spec.ends_at
    assert rule["code"] == "R-7KQ2MX9P"


def test_shopify_code_for_someone_without_an_account_is_for_anyone(workspace: Any) -> None:
    shop = ShopifyShop()
    with shop.store(workspace) as store:
        discount_create(store=store, spec=_spec(min_order_minor=0, ends_at=None))
    (rule,) = shop.discounts("R-7KQ2MX9P")
    assert rule["customer_selection"] == "all"
    assert rule["prerequisite_customer_ids"] == []
    assert rule["prerequisite_subtotal_range"] is None
    assert rule["ends_at"] is None


def test_shopify_free_product_must_exist(workspace: Any) -> None:
    shop = ShopifyShop()
    with shop.store(workspace) as store:
        with pytest.raises(DiscountError) as caught:
            discount_create(store=store, spec=_spec(FREE_PRODUCT, product_external_id="42"))
        with pytest.raises(DiscountError) as named:
            discount_create(store=store, spec=_spec(FREE_PRODUCT, product_external_id="tea"))
    assert "The product 42 is not in the store" in caught.value.message
    assert "“tea” is not a Shopify product id" in named.value.message
    assert shop.fake.price_rules == {}


def test_shopify_rule_is_removed_when_its_code_cannot_be_made(workspace: Any) -> None:
    shop = ShopifyShop()
    with shop.store(workspace) as store:
        shop.fail(after=1, times=6, status=503)
        with pytest.raises(DiscountError) as caught:
            discount_create(store=store, spec=_spec(customer_email=""))
    assert caught.value.retryable is True
    assert shop.fake.price_rules == {}
    assert shop.fake.paths[-1].endswith("/price_rules/507328176.json")


def test_shopify_missing_scope_is_not_retryable(workspace: Any) -> None:
    shop = ShopifyShop()
    with shop.store(workspace) as store:
        shop.fail(after=0, times=1, status=403)
        with pytest.raises(DiscountError) as caught:
            discount_create(store=store, spec=_spec(customer_email=""))
    assert caught.value.retryable is False
    assert "refused access (HTTP 403" in caught.value.message
    assert "allowed to create discounts" in caught.value.message


# --------------------------------------------------------------------------- WooCommerce


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (AMOUNT_OFF, {"discount_type": "fixed_cart", "amount": "10.00", "free_shipping": False}),
        (PERCENT_OFF, {"discount_type": "percent", "amount": "15.00", "product_ids": []}),
        (FREE_SHIPPING, {"discount_type": "fixed_cart", "amount": "0.00", "free_shipping": True}),
        (
            FREE_PRODUCT,
            {"discount_type": "percent", "amount": "100.00", "product_ids": [799],
             "limit_usage_to_x_items": 1},
        ),
    ],
)  # fmt: skip
def test_woocommerce_coupon_of_each_kind(
    workspace: Any, kind: str, expected: dict[str, Any]
) -> None:
    shop = WooShop()
    spec = _spec(kind, product_external_id="799" if kind == FREE_PRODUCT else "")
    with shop.store(workspace) as store:
        created = discount_create(store=store, spec=spec)
    (coupon,) = shop.discounts(spec.code)
    assert created == CreatedDiscount(code="R-7KQ2MX9P", external_id=str(coupon["id"]))
    assert {key: coupon[key] for key in expected} == expected
    assert coupon["code"] == "r-7kq2mx9p"
    assert coupon["description"] == TITLE
    assert coupon["usage_limit"] == 1
    assert coupon["usage_limit_per_user"] == 1
    assert coupon["email_restrictions"] == [EMAIL]
    assert coupon["minimum_amount"] == "40.00"
    expires = dt.datetime.fromisoformat(coupon["date_expires_gmt"]).replace(tzinfo=dt.UTC)
    assert expires == spec.ends_at


def test_woocommerce_free_product_needs_a_numeric_id(workspace: Any) -> None:
    shop = WooShop()
    with shop.store(workspace) as store, pytest.raises(DiscountError) as caught:
        discount_create(store=store, spec=_spec(FREE_PRODUCT, product_external_id="sencha"))
    assert "“sencha” is not a WooCommerce product id" in caught.value.message
    assert shop.fake.requests == 0


def test_woocommerce_someone_elses_coupon_with_our_label_but_no_limit_is_not_ours(
    workspace: Any,
) -> None:
    shop = WooShop()
    shop.fake.put_coupon("R-7KQ2MX9P", description=TITLE)
    with shop.store(workspace) as store, pytest.raises(DiscountError) as caught:
        discount_create(store=store, spec=_spec())
    assert "The coupon code already exists" in caught.value.message


# --------------------------------------------------------------------------- BigCommerce


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (AMOUNT_OFF, {"type": "per_total_discount", "amount": "10.0000",
                      "applies_to": {"entity": "categories", "ids": [0]}}),
        (PERCENT_OFF, {"type": "percentage_discount", "amount": "15.0000",
                       "applies_to": {"entity": "categories", "ids": [0]}}),
        (FREE_SHIPPING, {"type": "free_shipping", "amount": "0.0000",
                         "applies_to": {"entity": "categories", "ids": [0]}}),
        (FREE_PRODUCT, {"type": "per_total_discount", "amount": "24.0000",
                        "applies_to": {"entity": "products", "ids": [101]}}),
    ],
)  # fmt: skip
def test_bigcommerce_coupon_of_each_kind(
    workspace: Any, kind: str, expected: dict[str, Any]
) -> None:
    shop = BigCommerceShop()
    with shop.store(workspace) as store:
        product = shop.product(2400) if kind == FREE_PRODUCT else ""
        spec = _spec(kind, product_external_id=product)
        created = discount_create(store=store, spec=spec)
    (coupon,) = shop.discounts(spec.code)
    assert created == CreatedDiscount(code="R-7KQ2MX9P", external_id=str(coupon["id"]))
    assert {key: coupon[key] for key in expected} == expected
    assert coupon["name"] == f"{TITLE} (R-7KQ2MX9P)"
    assert coupon["enabled"] is True
    assert coupon["max_uses"] == 1
    assert coupon["max_uses_per_customer"] == 1
    assert coupon["min_purchase"] == "40.0000"
    assert email.utils.parsedate_to_datetime(coupon["expires"]) == spec.ends_at


def test_bigcommerce_name_keeps_the_code_when_the_label_is_long(workspace: Any) -> None:
    shop = BigCommerceShop()
    with shop.store(workspace) as store:
        discount_create(store=store, spec=_spec(title="Circolo: " + "tè verde " * 20))
    (coupon,) = shop.discounts("R-7KQ2MX9P")
    assert len(coupon["name"]) == 100
    assert coupon["name"].endswith(" (R-7KQ2MX9P)")


def test_bigcommerce_free_product_must_exist(workspace: Any) -> None:
    shop = BigCommerceShop()
    with shop.store(workspace) as store, pytest.raises(DiscountError) as caught:
        discount_create(store=store, spec=_spec(FREE_PRODUCT, product_external_id="4242"))
    assert "The product 4242 is not in the store" in caught.value.message
    assert caught.value.retryable is False
    assert shop.fake.store_coupons == {}


# --------------------------------------------------------------------------- Saleor


@pytest.mark.parametrize(
    ("kind", "expected", "value"),
    [
        (AMOUNT_OFF, {"type": "ENTIRE_ORDER", "discountValueType": "FIXED",
                      "applyOncePerOrder": False, "products": []}, "10.00"),
        (PERCENT_OFF, {"type": "ENTIRE_ORDER", "discountValueType": "PERCENTAGE",
                       "applyOncePerOrder": False}, "15"),
        (FREE_SHIPPING, {"type": "SHIPPING", "discountValueType": "PERCENTAGE"}, "100"),
        (FREE_PRODUCT, {"type": "SPECIFIC_PRODUCT", "discountValueType": "PERCENTAGE",
                        "applyOncePerOrder": True,
                        "products": [fake_saleor.gid("Product", 10)]}, "100"),
    ],
)  # fmt: skip
def test_saleor_voucher_of_each_kind(
    workspace: Any, kind: str, expected: dict[str, Any], value: str
) -> None:
    shop = SaleorShop()
    shop.fake.channels.append(
        {"id": fake_saleor.gid("Channel", 2), "name": "US", "slug": "us", "currencyCode": "USD",
         "isActive": True}
    )  # fmt: skip
    shop.fake.channels.append(
        {"id": fake_saleor.gid("Channel", 3), "name": "Old", "slug": "old", "currencyCode": "EUR",
         "isActive": False}
    )  # fmt: skip
    with shop.store(workspace) as store:
        product = shop.product(2400) if kind == FREE_PRODUCT else ""
        spec = _spec(kind, product_external_id=product)
        created = discount_create(store=store, spec=spec)
    (voucher,) = shop.discounts(spec.code)
    assert created == CreatedDiscount(code="R-7KQ2MX9P", external_id=voucher["id"])
    assert {key: voucher[key] for key in expected} == expected
    assert voucher["name"] == TITLE
    assert voucher["codes"] == ["R-7KQ2MX9P"]
    assert voucher["usageLimit"] == 1
    assert voucher["applyOncePerCustomer"] is True
    assert voucher["onlyForStaff"] is False
    assert dt.datetime.fromisoformat(voucher["endDate"]) == spec.ends_at
    # Listed in the active channel selling in the store's currency only.
    assert voucher["channelListings"] == [
        {
            "channel": {"id": fake_saleor.gid("Channel", 1), "slug": "default-channel",
                        "currencyCode": "EUR"},
            "discountValue": value,
            "minSpent": "40.00",
        }
    ]  # fmt: skip


def test_saleor_without_a_channel_in_the_currency_is_refused(workspace: Any) -> None:
    shop = SaleorShop()
    shop.fake.channels = [{**shop.fake.channels[0], "currencyCode": "USD"}]
    with shop.store(workspace) as store, pytest.raises(DiscountError) as caught:
        discount_create(store=store, spec=_spec())
    assert "no active channel selling in EUR" in caught.value.message
    assert shop.fake.vouchers == {}


def test_saleor_voucher_that_cannot_be_listed_is_deleted(workspace: Any) -> None:
    shop = SaleorShop()
    with shop.store(workspace) as store:
        # The channels query and voucherCreate answer; every listing attempt fails.
        shop.fail(after=2, times=6, status=502)
        with pytest.raises(DiscountError) as caught:
            discount_create(store=store, spec=_spec())
    assert caught.value.retryable is True
    assert shop.fake.vouchers == {}
    assert "voucherDelete" in shop.fake.graphql_requests[-1]["query"]


def test_saleor_unknown_product_is_refused_with_saleors_message(workspace: Any) -> None:
    shop = SaleorShop()
    with shop.store(workspace) as store, pytest.raises(DiscountError) as caught:
        discount_create(store=store, spec=_spec(FREE_PRODUCT, product_external_id="UHJvZHVjdDo5"))
    assert caught.value.retryable is False
    assert "products: Couldn't resolve to a node: UHJvZHVjdDo5" in caught.value.message


def test_saleor_missing_permission_is_not_retryable(workspace: Any) -> None:
    shop = SaleorShop()
    with shop.store(workspace) as store:
        store.credentials = {"token": "another-app"}
        with pytest.raises(DiscountError) as caught:
            discount_create(store=store, spec=_spec())
    assert caught.value.retryable is False
    assert "authenticated as an app" in caught.value.message
