"""Test helpers for commerce: stores and a snapshot of everything commerce wrote."""

from __future__ import annotations

from typing import Any

from circolo.activity.models import Activity
from circolo.commerce.models import (
    Order,
    OrderLine,
    Product,
    ProductVariant,
    Refund,
    RefundLine,
    Store,
)
from circolo.commerce.services import store_create
from circolo.core.models import Workspace
from circolo.people.models import Identity, Member


def make_store(
    workspace: Workspace,
    *,
    platform: str = "shopify",
    secret: str = "hush-hush-secret",
    api_url: str = "",
    external_id: str = "",
    credentials: dict[str, Any] | None = None,
    currency: str = "EUR",
    name: str = "",
) -> Store:
    return store_create(
        workspace=workspace,
        platform=platform,
        name=name or f"{platform} shop",
        currency=currency,
        actor=None,
        api_url=api_url,
        external_id=external_id,
        credentials=credentials or {},
        webhook_secret=secret,
    )


def commerce_snapshot(workspace: Workspace) -> dict[str, Any]:
    """Everything commerce produced in a workspace, keyed by platform ids (not row ids), so
    two runs in different workspaces or orders can be compared with ==."""
    members = {
        m.pk: m for m in Member.objects.filter(workspace=workspace, merged_into__isnull=True)
    }
    idents = {
        (i.channel.split(":")[0], i.kind, i.value): i.member_id
        for i in Identity.objects.filter(workspace=workspace)
    }

    def who(member_id: int | None) -> tuple[Any, ...] | None:
        if member_id is None:
            return None
        return tuple(sorted(k for k, v in idents.items() if v == member_id))

    orders = {
        o.external_id: (
            o.number, who(o.member_id), o.currency, o.subtotal_minor, o.discount_minor,
            o.shipping_minor, o.tax_minor, o.total_minor, o.refunded_minor,
            tuple(o.discount_codes), o.status, o.placed_at, o.paid_at, o.fulfilled_at,
            o.cancelled_at, o.source_updated_at,
        )
        for o in Order.objects.filter(workspace=workspace)
    }  # fmt: skip
    lines = sorted(
        (ln.order.external_id, ln.external_id, ln.product_external_id, ln.sku, ln.quantity,
         ln.unit_price_minor, ln.discount_minor, ln.product.external_id if ln.product else None)
        for ln in OrderLine.objects.filter(workspace=workspace).select_related("order", "product")
    )  # fmt: skip
    refunds = sorted(
        (r.external_id, r.order.external_id if r.order else None, r.amount_minor, r.refunded_at)
        for r in Refund.objects.filter(workspace=workspace).select_related("order")
    )
    refund_lines = sorted(
        (rl.refund.external_id, rl.line_external_id, rl.order_line_id is not None, rl.quantity,
         rl.amount_minor)
        for rl in RefundLine.objects.filter(workspace=workspace).select_related("refund")
    )  # fmt: skip
    products = sorted(
        (p.external_id, p.title, p.status, p.source_updated_at)
        for p in Product.objects.filter(workspace=workspace)
    )
    variants = sorted(
        (v.external_id, v.product.external_id, v.sku, v.price_minor)
        for v in ProductVariant.objects.filter(workspace=workspace).select_related("product")
    )
    activities = sorted(
        (a.source, a.source_id.split(":", 1)[1], a.kind, who(a.member_id), a.occurred_at,
         tuple(sorted((k, str(v)) for k, v in a.properties.items() if k != "store")))
        for a in Activity.objects.filter(workspace=workspace)
    )  # fmt: skip
    return {
        "members": len(members),
        "identities": sorted(idents),
        "orders": orders,
        "lines": lines,
        "refunds": refunds,
        "refund_lines": refund_lines,
        "products": products,
        "variants": variants,
        "activities": activities,
    }
