"""The webhook inbox: verify and store a delivery fast, process it later in a worker.

Receiving does the least that makes a delivery safe: find the store by its URL token, verify
the signature, parse the JSON, store the raw body under its dedupe key (a second copy only
bumps a counter) and schedule processing after commit. Processing turns the body into
records through the platform's connector and writes them with the commerce services; a
failure is kept with its error and retried with back-off, a payload that cannot validate
is kept as failed at once.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from circolo.commerce.connectors.base import (
    ConnectorError,
    Event,
    SignatureError,
    connector_for,
)
from circolo.commerce.models import Delivery, Store
from circolo.commerce.schema import CustomerIn, OrderIn, PayloadError, ProductIn, RefundIn
from circolo.commerce.services import (
    customer_upsert,
    order_upsert,
    product_upsert,
    refund_upsert,
    store_rejection_count,
)
from circolo.core.background import write_turn

logger = logging.getLogger(__name__)

# Headers kept with a delivery (the rest, cookies and proxies' additions, are not needed).
KEPT_HEADER_PREFIXES = ("x-shopify-", "x-wc-", "saleor-", "webhook-", "x-bc-", "content-type")
# Seconds before retry n (1-based): 30 s, 1 min, 2 min, ... capped at 6 h.
RETRY_BASE_SECONDS = 30
RETRY_CAP_SECONDS = 6 * 3600


@dataclass(frozen=True)
class Received:
    """What the receiving view answers: HTTP status and a short machine-readable word."""

    status: int
    result: str
    delivery_id: int | None = None


def delivery_receive(
    *, platform: str, token: str, headers: Mapping[str, str], body: bytes
) -> Received:
    """Verify and store one delivery; schedule its processing. Never raises on bad input.

    401 for a wrong or missing signature (nothing kept but the store's counter), 404 for an
    unknown store URL, 400 for a body that is not JSON, 200 otherwise (also for duplicates).
    """
    store = Store.objects.filter(hook_token=token, platform=platform).first()
    if store is None or store.status == Store.Status.DISCONNECTED:
        return Received(404, "unknown_store")
    try:
        connector = connector_for(platform)
    except KeyError:
        return Received(404, "unknown_store")
    lowered = {key.lower(): value for key, value in headers.items()}
    try:
        connector.verify(store=store, headers=lowered, body=body, now=timezone.now())
    except SignatureError as error:
        logger.warning("webhook for store %s refused: %s", store.pk, error)
        store_rejection_count(store_id=store.pk)
        return Received(401, "bad_signature")
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return Received(400, "not_json")
    topic = connector.topic(headers=lowered, payload=payload)[:100]
    key = connector.dedupe_key(headers=lowered, payload=payload, topic=topic)[:300]
    kept = {k: v for k, v in lowered.items() if k.startswith(KEPT_HEADER_PREFIXES)}
    try:
        with write_turn(urgent=True), transaction.atomic():
            delivery = Delivery.objects.create(
                workspace_id=store.workspace_id,
                store=store,
                topic=topic,
                dedupe_key=key,
                headers=kept,
                body=body.decode("utf-8"),
                received_at=timezone.now(),
            )
            delivery_schedule(delivery_id=delivery.pk)
    except IntegrityError:
        Delivery.objects.filter(store=store, dedupe_key=key).update(duplicates=F("duplicates") + 1)
        return Received(200, "duplicate")
    return Received(200, "accepted", delivery.pk)


def delivery_schedule(*, delivery_id: int) -> None:
    from circolo.commerce.tasks import delivery_process_task
    from circolo.core.background import enqueue_on_commit

    enqueue_on_commit(delivery_process_task, delivery_id, detach=True)


def retry_delay(attempts: int) -> dt.timedelta:
    return dt.timedelta(
        seconds=min(RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), RETRY_CAP_SECONDS)
    )


def delivery_locked(delivery_id: int) -> Delivery | None:
    """The delivery with its store, its row locked for the transaction. Only its own row:
    locking the joined store and workspace rows too would block every insert that refers to
    them (foreign-key checks) and deadlock concurrent workers of one workspace."""
    return (
        Delivery.objects.select_for_update(of=("self",))
        .select_related("store", "store__workspace")
        .filter(pk=delivery_id)
        .first()
    )


def delivery_process(*, delivery_id: int) -> str:
    """Process one stored delivery; returns its status afterwards. Idempotent: a processed or
    ignored delivery is left alone, and the writes themselves are idempotent."""
    with transaction.atomic():
        delivery = delivery_locked(delivery_id)
        if delivery is None or delivery.status in (
            Delivery.Status.PROCESSED,
            Delivery.Status.IGNORED,
        ):
            return delivery.status if delivery is not None else "missing"
        delivery.attempts += 1
        try:
            with transaction.atomic():
                outcome = _apply(delivery)
        except PayloadError as error:
            _failed(delivery, f"{error}", permanent=True)
        except ConnectorError as error:
            _failed(delivery, f"{error}", permanent=False)
        except Exception as error:
            # Anything else is a bug or an outage: keep the delivery, log it, retry later.
            logger.exception("delivery %s failed", delivery.pk)
            _failed(delivery, f"{error.__class__.__name__}: {error}", permanent=False)
        else:
            delivery.status = (
                Delivery.Status.IGNORED if outcome.get("ignored") else Delivery.Status.PROCESSED
            )
            delivery.outcome = outcome
            delivery.last_error = ""
            delivery.next_attempt_at = None
            delivery.permanent = False
            delivery.processed_at = timezone.now()
            if outcome.get("ignored"):
                logger.info(
                    "delivery %s: unknown topic %s acknowledged", delivery.pk, delivery.topic
                )
        delivery.save()
        return delivery.status


def _failed(delivery: Delivery, message: str, *, permanent: bool) -> None:
    delivery.status = Delivery.Status.FAILED
    delivery.last_error = message[:4000]
    delivery.permanent = permanent
    gave_up = delivery.attempts >= settings.CIRCOLO_WEBHOOK_MAX_ATTEMPTS
    delivery.next_attempt_at = (
        None if permanent or gave_up else timezone.now() + retry_delay(delivery.attempts)
    )


def _apply(delivery: Delivery) -> dict[str, Any]:
    store = delivery.store
    connector = connector_for(store.platform)
    payload = json.loads(delivery.body)
    event = connector.parse(
        store=store, topic=delivery.topic, payload=payload, headers=delivery.headers
    )
    return event_apply(store=store, event=event)


def event_apply(*, store: Store, event: Event) -> dict[str, Any]:
    """Write what an event carries; returns {"ignored": True} or counts per outcome."""
    if event.ignored:
        return {"ignored": True}
    outcome: dict[str, Any] = {}
    for record in event.records:
        result = record_apply(store=store, record=record)
        name = type(record).__name__.removesuffix("In").lower()
        outcome[f"{name}:{result}"] = outcome.get(f"{name}:{result}", 0) + 1
    if event.export_customers or event.erase_customers or event.shop_redact:
        from circolo.commerce.privacy import privacy_event_apply

        outcome.update(privacy_event_apply(store=store, event=event))
    return outcome


def record_apply(*, store: Store, record: Any) -> str:
    """Write one record with the service that owns it; returns the service's outcome."""
    if isinstance(record, OrderIn):
        return order_upsert(store=store, order=record)
    if isinstance(record, RefundIn):
        return refund_upsert(store=store, refund=record)
    if isinstance(record, ProductIn):
        return product_upsert(store=store, product=record)
    if isinstance(record, CustomerIn):
        return "resolved" if customer_upsert(store=store, customer=record) else "skipped"
    raise TypeError(f"not a commerce record: {type(record).__name__}")


def deliveries_due(*, now: dt.datetime, limit: int = 500) -> list[int]:
    """Failed deliveries whose next attempt is due, oldest first; and pending ones whose task
    was lost (received over five minutes ago and never attempted)."""
    failed = list(
        Delivery.objects.filter(status=Delivery.Status.FAILED, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    lost = list(
        Delivery.objects.filter(
            status=Delivery.Status.PENDING, received_at__lte=now - dt.timedelta(minutes=5)
        )
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )
    return failed + lost


def delivery_replay(*, delivery: Delivery, actor: Any) -> None:
    """Put a failed delivery back in the queue now (the health page's replay action)."""
    from circolo.core.audit import audit_record

    with transaction.atomic():
        updated = Delivery.objects.filter(
            pk=delivery.pk, store=delivery.store, status=Delivery.Status.FAILED
        ).update(next_attempt_at=timezone.now(), attempts=0, permanent=False)
        if updated:
            audit_record(
                workspace=delivery.store.workspace,
                actor=actor,
                action="delivery.replay",
                target=delivery.store,
                data={"delivery_id": delivery.pk, "topic": delivery.topic},
            )
            delivery_schedule(delivery_id=delivery.pk)
