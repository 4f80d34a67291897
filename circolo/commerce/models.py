"""Stores, their catalogue, orders and refunds, webhook deliveries, syncs and file imports.

Money is integer minor units with its ISO currency. Every row carries its workspace; rows
that came from a store carry the store and the platform's own id (unique per store).
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from circolo.core.models import Workspace
from circolo.core.sealing import seal, seal_json, unseal, unseal_json
from circolo.people.models import Identity, Member


class Platform(models.TextChoices):
    SHOPIFY = "shopify", "Shopify"
    WOOCOMMERCE = "woocommerce", "WooCommerce"
    BIGCOMMERCE = "bigcommerce", "BigCommerce"
    SALEOR = "saleor", "Saleor"
    FILE = "file", _("File import")


def _hook_token() -> str:
    return secrets.token_urlsafe(24)


class Store(models.Model):
    """A workspace's connection to one shop. Credentials and the webhook secret are sealed."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        PAUSED = "paused", _("Paused")
        DISCONNECTED = "disconnected", _("Disconnected")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="stores")
    platform = models.CharField(_("platform"), max_length=16, choices=Platform.choices)
    name = models.CharField(_("name"), max_length=120)
    currency = models.CharField(_("currency"), max_length=3)
    # Where the platform's API lives (shop domain, site URL, API base or GraphQL endpoint).
    api_url = models.URLField(_("API address"), max_length=300, blank=True)
    # The platform's id of the shop (Shopify domain, BigCommerce store hash, Saleor domain).
    external_id = models.CharField(_("shop id"), max_length=200, blank=True)
    credentials_sealed = models.TextField(blank=True, editable=False)
    webhook_secret_sealed = models.TextField(blank=True, editable=False)
    # Secret part of the URL the platform posts to; picks the store before any parsing.
    hook_token = models.CharField(max_length=64, unique=True, default=_hook_token, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    # Deliveries refused for a wrong or missing signature: counted, never stored.
    rejected_deliveries = models.PositiveBigIntegerField(default=0)
    rejected_last_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "pk"]
        indexes = [models.Index(fields=["workspace", "platform"])]

    def __str__(self) -> str:
        return self.name

    @property
    def channel(self) -> str:
        """Identity channel of this store's customers: ids are only unique inside one shop."""
        return f"{self.platform}:{self.pk}"

    @property
    def credentials(self) -> dict[str, Any]:
        return unseal_json(self.credentials_sealed)

    @credentials.setter
    def credentials(self, value: dict[str, Any]) -> None:
        self.credentials_sealed = seal_json(value)

    @property
    def webhook_secret(self) -> str:
        return unseal(self.webhook_secret_sealed)

    @webhook_secret.setter
    def webhook_secret(self, value: str) -> None:
        self.webhook_secret_sealed = seal(value)


class Product(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        DRAFT = "draft", _("Draft")
        ARCHIVED = "archived", _("Archived")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="products")
    external_id = models.CharField(max_length=100)
    title = models.CharField(_("title"), max_length=300)
    # Titles in other languages: {"it": "...", "zh-hans": "..."}.
    titles = models.JSONField(default=dict, blank=True)
    url = models.URLField(max_length=500, blank=True)
    image_url = models.URLField(max_length=500, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    source_updated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["store", "external_id"], name="uniq_product_per_store")
        ]
        indexes = [models.Index(fields=["workspace", "title"])]

    def __str__(self) -> str:
        return self.title

    def title_in(self, language: str) -> str:
        return str(self.titles.get(language) or self.title)


class ProductVariant(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="variants")
    external_id = models.CharField(max_length=100)
    sku = models.CharField(_("SKU"), max_length=100, blank=True)
    title = models.CharField(_("title"), max_length=300, blank=True)
    price_minor = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["store", "external_id"], name="uniq_variant_per_store")
        ]
        indexes = [models.Index(fields=["workspace", "sku"])]

    def __str__(self) -> str:
        return self.sku or self.title


class OrderStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    PAID = "paid", _("Paid")
    FULFILLED = "fulfilled", _("Fulfilled")
    PARTIALLY_REFUNDED = "partially_refunded", _("Partially refunded")
    REFUNDED = "refunded", _("Refunded")
    CANCELLED = "cancelled", _("Cancelled")


class Order(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="orders")
    external_id = models.CharField(max_length=100)
    number = models.CharField(_("number"), max_length=64, blank=True)
    member = models.ForeignKey(
        Member, on_delete=models.SET_NULL, null=True, blank=True, related_name="orders"
    )
    # The identity the order was matched by: merges move identities, orders follow them.
    customer_identity = models.ForeignKey(
        Identity, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    customer_external_id = models.CharField(max_length=100, blank=True)
    email = models.CharField(max_length=320, blank=True)
    currency = models.CharField(max_length=3)
    subtotal_minor = models.BigIntegerField(default=0)
    discount_minor = models.BigIntegerField(default=0)
    shipping_minor = models.BigIntegerField(default=0)
    tax_minor = models.BigIntegerField(default=0)
    total_minor = models.BigIntegerField(default=0)
    # Sum of linked refunds, kept with the status so lists need no aggregate.
    refunded_minor = models.BigIntegerField(default=0)
    discount_codes = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=20, choices=OrderStatus.choices)
    # What the platform said before refunds and cancellation: pending, paid or fulfilled.
    base_status = models.CharField(max_length=20, choices=OrderStatus.choices)
    placed_at = models.DateTimeField()
    paid_at = models.DateTimeField(null=True, blank=True)
    fulfilled_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    landing_site = models.CharField(max_length=500, blank=True)
    referring_code = models.CharField(max_length=100, blank=True)
    shipping_address = models.JSONField(default=dict, blank=True)
    # The platform's last-modified time of the state stored here: older updates never win.
    source_updated_at = models.DateTimeField()
    erased_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["store", "external_id"], name="uniq_order_per_store")
        ]
        indexes = [
            models.Index(fields=["workspace", "member", "placed_at"]),
            models.Index(fields=["workspace", "placed_at"]),
        ]

    def __str__(self) -> str:
        return self.number or self.external_id


class OrderLine(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    external_id = models.CharField(max_length=100)
    product = models.ForeignKey(
        Product, on_delete=models.SET_NULL, null=True, blank=True, related_name="order_lines"
    )
    variant = models.ForeignKey(
        ProductVariant, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    product_external_id = models.CharField(max_length=100, blank=True)
    variant_external_id = models.CharField(max_length=100, blank=True)
    sku = models.CharField(max_length=100, blank=True)
    title = models.CharField(max_length=300, blank=True)
    quantity = models.IntegerField()
    unit_price_minor = models.BigIntegerField()
    # Every discount allocated to the line (its own and its share of order-level ones).
    discount_minor = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["order", "external_id"], name="uniq_line_per_order")
        ]
        indexes = [
            models.Index(fields=["workspace", "product"]),
            models.Index(fields=["workspace", "sku"]),
        ]

    @property
    def gross_minor(self) -> int:
        return self.quantity * self.unit_price_minor - self.discount_minor


class Refund(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="refunds")
    external_id = models.CharField(max_length=100)
    # A refund can arrive before its order: it waits with the order's id and links later.
    order_external_id = models.CharField(max_length=100)
    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, null=True, blank=True, related_name="refunds"
    )
    amount_minor = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=300, blank=True)
    refunded_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["store", "external_id"], name="uniq_refund_per_store")
        ]
        indexes = [models.Index(fields=["store", "order_external_id"])]


class RefundLine(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    refund = models.ForeignKey(Refund, on_delete=models.CASCADE, related_name="lines")
    line_external_id = models.CharField(max_length=100)
    order_line = models.ForeignKey(
        OrderLine, on_delete=models.CASCADE, null=True, blank=True, related_name="refund_lines"
    )
    quantity = models.IntegerField(default=0)
    # Merchandise refunded for this line (after its discounts, before tax).
    amount_minor = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["refund", "line_external_id"], name="uniq_refund_line")
        ]


class MemberCommerce(models.Model):
    """A member's buying summary per currency, recomputed from orders when they change."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="commerce")
    currency = models.CharField(max_length=3)
    order_count = models.IntegerField(default=0)
    net_spend_minor = models.BigIntegerField(default=0)
    refunded_minor = models.BigIntegerField(default=0)
    first_order_at = models.DateTimeField(null=True, blank=True)
    last_order_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "currency"], name="uniq_commerce_member")
        ]
        indexes = [
            models.Index(fields=["workspace", "currency", "net_spend_minor"]),
            models.Index(fields=["workspace", "currency", "last_order_at"]),
        ]


class Delivery(models.Model):
    """One verified webhook delivery, stored raw before any processing (the inbox)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        PROCESSED = "processed", _("Processed")
        FAILED = "failed", _("Failed")
        IGNORED = "ignored", _("Ignored")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="deliveries")
    topic = models.CharField(max_length=100)
    # What makes two deliveries the same event for this platform (see each connector).
    dedupe_key = models.CharField(max_length=300)
    headers = models.JSONField(default=dict)
    body = models.TextField()
    received_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # Later copies of the same event: acknowledged and counted, not processed.
    duplicates = models.IntegerField(default=0)
    attempts = models.IntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # True when retrying cannot help (the payload itself is invalid).
    permanent = models.BooleanField(default=False)
    last_error = models.TextField(blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # What processing changed, for the health page: {"orders": "created", ...}.
    outcome = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["store", "dedupe_key"], name="uniq_delivery")
        ]
        indexes = [
            models.Index(fields=["store", "status", "received_at"]),
            models.Index(fields=["status", "next_attempt_at"]),
        ]


class SyncRun(models.Model):
    """A backfill or a reconciliation of one store: where it stands, so it can resume."""

    class Mode(models.TextChoices):
        BACKFILL = "backfill", _("Backfill")
        RECONCILE = "reconcile", _("Reconciliation")

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="sync_runs")
    mode = models.CharField(max_length=10, choices=Mode.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    # Only records changed after this time are fetched (reconciliation); None: everything.
    since = models.DateTimeField(null=True, blank=True)
    # Resource being fetched and the platform's cursor/page for the next page of it.
    resource = models.CharField(max_length=20, blank=True)
    cursor = models.CharField(max_length=500, blank=True)
    resources_done = models.JSONField(default=list, blank=True)
    fetched = models.IntegerField(default=0)
    # Records that were missing or out of date here and were written (what it repaired).
    repaired = models.IntegerField(default=0)
    repaired_detail = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["store", "mode", "started_at"])]


class ImportJob(models.Model):
    """A CSV or JSONL file being imported into a store, resumable row by row."""

    class Kind(models.TextChoices):
        CUSTOMERS = "customers", _("Customers")
        PRODUCTS = "products", _("Products")
        ORDERS = "orders", _("Orders with lines")

    class Status(models.TextChoices):
        MAPPING = "mapping", _("Waiting for column mapping")
        CHECKED = "checked", _("Dry run done")
        RUNNING = "running", _("Importing")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="imports")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    file_name = models.CharField(max_length=255)
    # Where the uploaded file is kept (under the data directory) and its SHA-256.
    file_path = models.CharField(max_length=500)
    file_sha256 = models.CharField(max_length=64)
    file_format = models.CharField(max_length=5)
    mapping = models.JSONField(default=dict, blank=True)
    skip_bad_rows = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.MAPPING)
    total_rows = models.IntegerField(default=0)
    # Rows committed so far: a resumed run starts after this row.
    rows_done = models.IntegerField(default=0)
    rows_ok = models.IntegerField(default=0)
    rows_bad = models.IntegerField(default=0)
    created = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]


class ImportRowError(models.Model):
    """One problem in one row of an import file: line, field, reason."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="row_errors")
    dry_run = models.BooleanField(default=False)
    line = models.IntegerField()
    field = models.CharField(max_length=100, blank=True)
    reason = models.TextField()

    class Meta:
        ordering = ["line", "pk"]
        indexes = [models.Index(fields=["job", "dry_run", "line"])]
