"""The one contract every store connector fulfils, and the registry that finds them.

A connector knows one platform: how its webhooks are signed and named, what makes two
deliveries the same event, how its payloads map onto schema.py records, and how to page
through its API. It never writes to the database itself: it returns records, and the
services in commerce/services.py (through webhooks.py and sync.py) write them.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from django.utils.translation import gettext_lazy as _

from circolo.commerce.schema import CustomerIn, OrderIn, ProductIn, RefundIn

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

    from circolo.commerce.discounts import CreatedDiscount, DiscountSpec
    from circolo.commerce.models import Store

logger = logging.getLogger(__name__)

Record = CustomerIn | ProductIn | OrderIn | RefundIn
# Resources a backfill walks, in this order (customers first so orders find their member).
RESOURCES = ("customers", "products", "orders")


class SignatureError(Exception):
    """The delivery is not provably from the store: missing, wrong or stale signature."""


class ConnectorError(Exception):
    """The platform's API failed in a way retrying later may fix (network, 5xx, 429)."""


@dataclass(frozen=True)
class Event:
    """What a delivery asks for. `records` are written in order; `erase`/`export` name
    store customers for the privacy topics; `shop_redact` erases the whole store's data."""

    records: tuple[Record, ...] = ()
    erase_customers: tuple[CustomerIn, ...] = ()
    export_customers: tuple[CustomerIn, ...] = ()
    shop_redact: bool = False
    # A topic the connector does not handle: acknowledged and logged, nothing written.
    ignored: bool = False


@dataclass(frozen=True)
class Page:
    """One page of a resource from the platform's API; next_cursor None means the end."""

    records: tuple[Record, ...]
    next_cursor: str | None


@dataclass(frozen=True)
class SetupField:
    """A setting the store setup form asks for. `secret` fields are sealed at rest."""

    name: str
    label: StrOrPromise
    help_text: StrOrPromise = ""
    secret: bool = False
    required: bool = True
    # Where the value goes: "credentials" (a key of Store.credentials), "webhook_secret",
    # "api_url" or "external_id".
    target: str = "credentials"


@dataclass(frozen=True)
class SetupGuide:
    """What the store setup page shows: steps in order, fields to fill, topics to subscribe."""

    steps: tuple[StrOrPromise, ...]
    fields: tuple[SetupField, ...]
    topics: tuple[str, ...]


@dataclass
class Connector(ABC):
    """Base class; each platform subclasses it and registers one instance with `register`.
    A subclass that misses a method of the contract cannot be instantiated."""

    platform: ClassVar[str]
    label: ClassVar[str]
    # Sleeps between API retries; tests replace it to run without waiting.
    sleep: Callable[[float], None] = field(default=lambda seconds: None, repr=False)

    # ---- webhooks
    @abstractmethod
    def verify(
        self, *, store: Store, headers: Mapping[str, str], body: bytes, now: dt.datetime
    ) -> None:
        """Raise SignatureError unless the body is signed by the store's secret (and fresh,
        where the platform signs a timestamp)."""

    @abstractmethod
    def topic(self, *, headers: Mapping[str, str], payload: Any) -> str:
        """The platform's name of the event, e.g. "orders/paid"."""

    @abstractmethod
    def dedupe_key(self, *, headers: Mapping[str, str], payload: Any, topic: str) -> str:
        """Equal for two deliveries of the same event, different for different events."""

    @abstractmethod
    def parse(self, *, store: Store, topic: str, payload: Any, headers: Mapping[str, str]) -> Event:
        """The records a delivery carries. Raise schema.PayloadError for a payload that does
        not validate, ConnectorError when a refetch from the API fails (retried later)."""

    @abstractmethod
    def test_delivery(self, *, store: Store) -> tuple[dict[str, str], bytes]:
        """Headers and body of a signed test delivery, as the platform would send it, for the
        setup page's "send a test delivery" button."""

    # ---- API (each platform builds its own ApiClient from the store's credentials)
    @abstractmethod
    def fetch_page(
        self, *, store: Store, resource: str, cursor: str, since: dt.datetime | None
    ) -> Page:
        """One page of `resource` (customers, products or orders; orders carry their refunds)
        starting at `cursor` ("" for the first page). With `since`, only records modified at or
        after it. Raise ConnectorError on failure after the client's retries."""

    @abstractmethod
    def setup_guide(self) -> SetupGuide:
        """What the store setup page shows for this platform."""

    # ---- discounts (loyalty rewards)
    # Not abstract (yet): connectors written for tests implement only the sync contract, and
    # discounts.discounts_supported tells a platform that overrides this from one that doesn't.
    def create_discount(self, *, store: Store, spec: DiscountSpec) -> CreatedDiscount:
        """Make `spec` in the store through its API as a code usable once in total (and once
        per customer, restricted to spec.customer_email, where the platform can). Raise
        discounts.DiscountError: retryable for timeouts, 5xx and throttling, not for answers
        refusing the request (quoting the platform's message)."""
        from circolo.commerce.discounts import DiscountError

        raise DiscountError(
            _("%(platform)s stores cannot make discount codes through Circolo.")
            % {"platform": self.label},
            retryable=False,
        )


_REGISTRY: dict[str, Connector] = {}


def register(connector: Connector) -> Connector:
    _REGISTRY[connector.platform] = connector
    return connector


def connector_for(platform: str) -> Connector:
    """The registered connector of a platform; KeyError for file-only stores."""
    _load()
    return _REGISTRY[platform]


def connectors() -> dict[str, Connector]:
    _load()
    return dict(_REGISTRY)


PLATFORM_PACKAGES = ("shopify", "woocommerce", "bigcommerce", "saleor")


def _load() -> None:
    """Import each connector package once (importing registers it). A package that fails to
    import is logged and left out, so one broken connector does not hide the others."""
    for name in PLATFORM_PACKAGES:
        if name in _REGISTRY or name in _BROKEN:
            continue
        try:
            importlib.import_module(f"circolo.commerce.connectors.{name}")
        except Exception:
            _BROKEN.add(name)
            logger.exception("the %s connector could not be loaded", name)


_BROKEN: set[str] = set()


UNKNOWN_TOPIC = _("Unknown topic: acknowledged and logged, nothing changed.")
