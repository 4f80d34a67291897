"""The webhook inbox and the sync engine, with a minimal connector of the test's own."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from django.utils import timezone

from circolo.commerce.connectors import base
from circolo.commerce.connectors.base import (
    Connector,
    ConnectorError,
    Event,
    Page,
    SetupGuide,
    SignatureError,
)
from circolo.commerce.models import Delivery, Order, Store, SyncRun
from circolo.commerce.schema import CustomerIn, OrderIn, PayloadError
from circolo.commerce.sync import store_sync
from circolo.commerce.webhooks import (
    deliveries_due,
    delivery_process,
    delivery_receive,
    delivery_replay,
    retry_delay,
)
from circolo.core.sealing import SealError, seal, unseal
from circolo.testing.commerce import make_store

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)


def _order(ext: str, minute: int = 0, status: str = "paid") -> OrderIn:
    return OrderIn(
        external_id=ext,
        currency="EUR",
        placed_at=T0,
        updated_at=T0 + dt.timedelta(minutes=minute),
        status=status,
        total_minor=1000,
        paid_at=T0 if status != "pending" else None,
        customer=CustomerIn(external_id=f"c-{ext}", email=f"{ext}@example.com"),
    )


class ToyConnector(Connector):
    """Signs like Shopify (base64 HMAC of the body); payload {"topic", "order": {...}}."""

    platform = "toy"
    label = "Toy"
    pages: dict[str, list[list[OrderIn]]]
    failures: list[str]

    def __init__(self) -> None:
        super().__init__()
        self.pages = {"customers": [[]], "products": [[]], "orders": [[]]}
        self.failures = []
        self.crash_next_apply = False

    def verify(self, *, store: Store, headers: Mapping[str, str], body: bytes, now: Any) -> None:
        digest = hmac.new(store.webhook_secret.encode(), body, hashlib.sha256).digest()
        if not hmac.compare_digest(base64.b64encode(digest).decode(), headers.get("x-sig", "")):
            raise SignatureError("bad signature")

    def topic(self, *, headers: Mapping[str, str], payload: Any) -> str:
        return str(payload.get("topic", ""))

    def dedupe_key(self, *, headers: Mapping[str, str], payload: Any, topic: str) -> str:
        return headers.get("x-id", "")

    def parse(self, *, store: Store, topic: str, payload: Any, headers: Mapping[str, str]) -> Event:
        if topic == "boom":
            raise ConnectorError("the shop's API is down")
        if topic != "order":
            return Event(ignored=True)
        raw = payload.get("order")
        if not isinstance(raw, dict) or "id" not in raw:
            raise PayloadError("order.id", "missing")
        return Event(records=(_order(str(raw["id"]), int(raw.get("v", 0))),))

    def test_delivery(self, *, store: Store) -> tuple[dict[str, str], bytes]:
        return _signed(store, {"topic": "ping"}, "test")

    def setup_guide(self) -> SetupGuide:
        return SetupGuide(steps=("Paste the secret.",), fields=(), topics=("order",))

    def fetch_page(self, *, store: Store, resource: str, cursor: str, since: Any) -> Page:
        if self.failures:
            raise ConnectorError(self.failures.pop())
        pages = self.pages[resource]
        index = int(cursor or 0)
        nxt = str(index + 1) if index + 1 < len(pages) else None
        return Page(records=tuple(pages[index]), next_cursor=nxt)


@pytest.fixture
def toy() -> Iterator[ToyConnector]:
    connector = ToyConnector()
    base._REGISTRY["toy"] = connector
    yield connector
    base._REGISTRY.pop("toy", None)


@pytest.fixture
def store(workspace: Any, toy: ToyConnector) -> Store:
    return make_store(workspace, platform="shopify")


def _signed(
    store: Store, payload: dict[str, Any], delivery_id: str
) -> tuple[dict[str, str], bytes]:
    body = json.dumps(payload).encode()
    digest = hmac.new(store.webhook_secret.encode(), body, hashlib.sha256).digest()
    return {"X-Sig": base64.b64encode(digest).decode(), "X-Id": delivery_id}, body


def _receive(store: Store, payload: dict[str, Any], delivery_id: str = "d1", **over: str) -> Any:
    headers, body = _signed(store, payload, delivery_id)
    headers.update(over)
    return delivery_receive(platform="toy", token=store.hook_token, headers=headers, body=body)


@pytest.fixture(autouse=True)
def _toy_platform(store: Store) -> None:
    Store.objects.filter(pk=store.pk).update(platform="toy")
    store.platform = "toy"


def test_secrets_are_sealed_at_rest(store: Store) -> None:
    row = Store.objects.values("webhook_secret_sealed", "credentials_sealed").get(pk=store.pk)
    assert "hush-hush-secret" not in row["webhook_secret_sealed"]
    assert Store.objects.get(pk=store.pk).webhook_secret == "hush-hush-secret"
    assert unseal(seal("x")) == "x"


def test_rotated_keys_still_open_old_values(settings: Any) -> None:
    settings.CIRCOLO_SECRET_KEYS = ["old-key"]
    token = seal("secret")
    settings.CIRCOLO_SECRET_KEYS = ["new-key", "old-key"]
    assert unseal(token) == "secret"
    settings.CIRCOLO_SECRET_KEYS = ["new-key"]
    with pytest.raises(SealError):
        unseal(token)


def test_bad_signature_is_refused_and_only_counted(store: Store) -> None:
    result = _receive(store, {"topic": "order", "order": {"id": 1}}, **{"X-Sig": "AAAA"})
    assert (result.status, result.result) == (401, "bad_signature")
    assert not Delivery.objects.exists()
    assert Store.objects.get(pk=store.pk).rejected_deliveries == 1


def test_unknown_store_url_is_404(store: Store) -> None:
    headers, body = _signed(store, {"topic": "order"}, "d1")
    assert delivery_receive(platform="toy", token="nope", headers=headers, body=body).status == 404
    other = delivery_receive(platform="shopify", token=store.hook_token, headers=headers, body=body)
    assert other.status == 404


def test_delivery_is_stored_then_processed_and_duplicates_counted(
    store: Store, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        first = _receive(store, {"topic": "order", "order": {"id": 7}})
    assert first.result == "accepted"
    delivery = Delivery.objects.get()
    assert delivery.status == "processed"
    assert delivery.outcome == {"order:created": 1}
    assert _receive(store, {"topic": "order", "order": {"id": 7}}).result == "duplicate"
    assert Delivery.objects.get().duplicates == 1
    assert Order.objects.count() == 1


def test_through_the_url(store: Store, client: Any) -> None:
    headers, body = _signed(store, {"topic": "order", "order": {"id": 3}}, "d9")
    response = client.post(
        f"/hooks/toy/{store.hook_token}/",
        data=body,
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 200
    assert response.json() == {"result": "accepted"}
    assert client.get(f"/hooks/toy/{store.hook_token}/").status_code == 405
    bad = client.post(
        f"/hooks/toy/{store.hook_token}/", data=b"{}", content_type="application/json"
    )
    assert bad.status_code == 401


def test_not_json_is_400(store: Store) -> None:
    headers, body = _signed(store, {}, "d1")
    body = b"not json"
    digest = hmac.new(store.webhook_secret.encode(), body, hashlib.sha256).digest()
    headers["X-Sig"] = base64.b64encode(digest).decode()
    assert (
        delivery_receive(platform="toy", token=store.hook_token, headers=headers, body=body).status
        == 400
    )


def test_invalid_payload_fails_for_good_with_its_reason(store: Store) -> None:
    result = _receive(store, {"topic": "order", "order": {"no": "id"}})
    assert delivery_process(delivery_id=result.delivery_id) == "failed"
    delivery = Delivery.objects.get()
    assert delivery.permanent and delivery.next_attempt_at is None
    assert "order.id" in delivery.last_error


def test_outage_is_retried_with_backoff_then_replayed(store: Store, owner: Any) -> None:
    result = _receive(store, {"topic": "boom"})
    assert delivery_process(delivery_id=result.delivery_id) == "failed"
    delivery = Delivery.objects.get()
    assert not delivery.permanent
    assert delivery.next_attempt_at is not None
    assert delivery.next_attempt_at > timezone.now()
    assert deliveries_due(now=timezone.now()) == []
    assert deliveries_due(now=delivery.next_attempt_at) == [delivery.pk]
    assert retry_delay(1) < retry_delay(2) < retry_delay(3)
    delivery_replay(delivery=delivery, actor=owner.user)
    assert Delivery.objects.get().attempts == 0


def test_unknown_topic_is_acknowledged_and_ignored(store: Store) -> None:
    result = _receive(store, {"topic": "carts/update"})
    assert result.status == 200
    assert delivery_process(delivery_id=result.delivery_id) == "ignored"
    assert delivery_process(delivery_id=result.delivery_id) == "ignored"


def test_gives_up_after_max_attempts(store: Store, settings: Any) -> None:
    settings.CIRCOLO_WEBHOOK_MAX_ATTEMPTS = 2
    result = _receive(store, {"topic": "boom"})
    delivery_process(delivery_id=result.delivery_id)
    delivery_process(delivery_id=result.delivery_id)
    assert Delivery.objects.get().next_attempt_at is None


def test_backfill_resumes_after_a_failure(store: Store, toy: ToyConnector) -> None:
    toy.pages["orders"] = [[_order("1"), _order("2")], [_order("3")], [_order("4")]]
    toy.pages["customers"] = [[CustomerIn(external_id="c-9", email="n@example.com")]]
    first = store_sync(store=store, mode="backfill", max_pages=3)
    assert first.status == "running"
    toy.failures.append("HTTP 503")
    failed = store_sync(store=store, mode="backfill")
    assert failed.status == "failed"
    assert SyncRun.objects.get().error == "HTTP 503"
    done = store_sync(store=store, mode="backfill")
    assert done.run_id == first.run_id
    assert done.status == "done"
    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["1", "2", "3", "4"]
    assert done.fetched == 5


def test_reconcile_counts_what_it_repaired(store: Store, toy: ToyConnector) -> None:
    toy.pages["orders"] = [[_order("1")]]
    store_sync(store=store, mode="backfill")
    toy.pages["orders"] = [[_order("1"), _order("2")], [_order("1", minute=5, status="fulfilled")]]
    result = store_sync(store=store, mode="reconcile")
    assert (result.status, result.repaired) == ("done", 2)
    run = SyncRun.objects.get(mode="reconcile")
    assert run.repaired_detail == {"orders:created": 1, "orders:updated": 1}
    assert run.since is not None
    again = store_sync(store=store, mode="reconcile")
    assert again.repaired == 0
