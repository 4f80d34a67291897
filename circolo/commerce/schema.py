"""The platform-neutral shape of commerce records. Each connector and the file import turn
their own payloads into these; the services only ever see these."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


class PayloadError(ValueError):
    """A payload that cannot be turned into a record; `field` names the part that is wrong.

    Retrying does not help: the delivery is stored as failed with this reason.
    """

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}" if field_name else message)
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class CustomerIn:
    external_id: str = ""
    email: str = ""
    phone: str = ""
    first_name: str = ""
    last_name: str = ""
    city: str = ""
    country: str = ""
    languages: tuple[str, ...] = ()
    accepts_marketing: bool | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None

    @property
    def display_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part).strip()

    @property
    def is_empty(self) -> bool:
        return not (self.external_id or self.email or self.phone)


@dataclass(frozen=True)
class VariantIn:
    external_id: str
    sku: str = ""
    title: str = ""
    price_minor: int = 0


@dataclass(frozen=True)
class ProductIn:
    external_id: str
    title: str
    titles: dict[str, str] = field(default_factory=dict)
    url: str = ""
    image_url: str = ""
    status: str = "active"
    updated_at: dt.datetime | None = None
    variants: tuple[VariantIn, ...] = ()


@dataclass(frozen=True)
class LineIn:
    external_id: str
    quantity: int
    unit_price_minor: int
    discount_minor: int = 0
    product_external_id: str = ""
    variant_external_id: str = ""
    sku: str = ""
    title: str = ""


@dataclass(frozen=True)
class RefundLineIn:
    line_external_id: str
    quantity: int
    amount_minor: int


@dataclass(frozen=True)
class RefundIn:
    external_id: str
    order_external_id: str
    refunded_at: dt.datetime
    amount_minor: int
    currency: str
    lines: tuple[RefundLineIn, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class OrderIn:
    """An order as the platform last described it. `status` is pending, paid or fulfilled;
    refunds and cancellation are separate facts (refunds, cancelled_at)."""

    external_id: str
    currency: str
    placed_at: dt.datetime
    updated_at: dt.datetime
    status: str
    total_minor: int
    number: str = ""
    customer: CustomerIn | None = None
    subtotal_minor: int = 0
    discount_minor: int = 0
    shipping_minor: int = 0
    tax_minor: int = 0
    discount_codes: tuple[str, ...] = ()
    paid_at: dt.datetime | None = None
    fulfilled_at: dt.datetime | None = None
    cancelled_at: dt.datetime | None = None
    landing_site: str = ""
    referring_code: str = ""
    shipping_address: dict[str, Any] = field(default_factory=dict)
    lines: tuple[LineIn, ...] = ()
    refunds: tuple[RefundIn, ...] = ()
