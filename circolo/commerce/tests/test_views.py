"""Store pages, the member orders panel and the member list's purchase filters."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import urlencode

import pytest
from django.http import QueryDict
from django.urls import include, path, reverse
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

import circolo.urls
from circolo.commerce import views as commerce_views
from circolo.commerce.connectors import base
from circolo.commerce.connectors.base import (
    Connector,
    Event,
    Page,
    SetupField,
    SetupGuide,
    SignatureError,
)
from circolo.commerce.models import Delivery, Order, Store, SyncRun
from circolo.commerce.schema import CustomerIn, LineIn, OrderIn, PayloadError, ProductIn
from circolo.commerce.services import order_upsert, product_upsert
from circolo.core.models import AuditLog
from circolo.people.forms import MemberFilterForm
from circolo.people.models import Member
from circolo.testing.commerce import make_store

# The lead includes circolo.commerce.urls in circolo/urls.py; until then these tests add it.
urlpatterns = list(circolo.urls.urlpatterns)
if not any(getattr(p, "namespace", None) == "commerce" for p in urlpatterns):
    urlpatterns.append(path("w/<slug:slug>/", include("circolo.commerce.urls")))

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)
SECRET = "shpss_webhook_secret_value"
TOKEN = "shpat_admin_api_token_value"


# --------------------------------------------------------------------------- a test connector


@dataclass
class SignedShop(Connector):
    """A connector for the tests: HMAC-SHA256 of the body with the store's webhook secret,
    the topic in a header, one order per orders page."""

    platform: ClassVar[str] = "shopify"
    label: ClassVar[str] = "Shopify"
    # What the test delivery carries: a harmless ping, or (to test failures) a bad order.
    ping: tuple[str, dict[str, Any]] = ("app/ping", {"id": "ping"})

    def verify(
        self, *, store: Store, headers: Mapping[str, str], body: bytes, now: dt.datetime
    ) -> None:
        given_mac = headers.get("x-test-hmac", "")
        secret = store.webhook_secret.encode()
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
        if not secret or not hmac.compare_digest(given_mac, expected):
            raise SignatureError("bad signature")

    def topic(self, *, headers: Mapping[str, str], payload: Any) -> str:
        return headers.get("x-test-topic", "")

    def dedupe_key(self, *, headers: Mapping[str, str], payload: Any, topic: str) -> str:
        return f"{topic}:{payload.get('id')}"

    def parse(self, *, store: Store, topic: str, payload: Any, headers: Mapping[str, str]) -> Event:
        if topic == "app/ping":
            return Event()
        if topic == "orders/create":
            if "total" not in payload:
                raise PayloadError("total", "missing")
            return Event(records=(_order(str(payload["id"]), payload["total"]),))
        return Event(ignored=True)

    def test_delivery(self, *, store: Store) -> tuple[dict[str, str], bytes]:
        return signed(store, *self.ping)

    def fetch_page(
        self, *, store: Store, resource: str, cursor: str, since: dt.datetime | None
    ) -> Page:
        if resource == "orders":
            return Page(records=(_order("B1", 4200),), next_cursor=None)
        return Page(records=(), next_cursor=None)

    def setup_guide(self) -> SetupGuide:
        return SetupGuide(
            steps=("Create a custom app in the Shopify admin.", "Copy its tokens below."),
            fields=(
                SetupField(name="shop", label="Shop domain", target="external_id"),
                SetupField(name="api", label="Admin address", target="api_url", required=False),
                SetupField(name="location", label="Location id", required=False),
                SetupField(name="access_token", label="Admin API token", secret=True),
                SetupField(
                    name="secret", label="Webhook secret", secret=True, target="webhook_secret"
                ),
            ),
            topics=("orders/create", "orders/updated", "refunds/create"),
        )


def _order(external_id: str, total: int) -> OrderIn:
    return OrderIn(
        external_id=external_id,
        number=f"#{external_id}",
        currency="EUR",
        placed_at=T0,
        updated_at=T0,
        status="paid",
        total_minor=total,
        customer=CustomerIn(email="ada@example.com", first_name="Ada"),
    )


def signed(store: Store, topic: str, payload: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    body = json.dumps(payload).encode()
    mac = hmac.new(store.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Test-Hmac": mac, "X-Test-Topic": topic}, body


@pytest.fixture
def connector(monkeypatch: Any) -> SignedShop:
    """Only the test connector is installed: other platforms have none, and nothing else
    can register itself while the test runs."""
    shop = SignedShop()
    monkeypatch.setattr(base, "_REGISTRY", {"shopify": shop})
    monkeypatch.setattr(base, "_load", lambda: None)
    return shop


@pytest.fixture(autouse=True)
def _no_mfa(settings: Any) -> None:
    # Owners and managers would be sent to set up two-factor authentication first.
    settings.CIRCOLO_MFA_ENFORCE = False


def url(name: str, workspace: Any, *args: Any) -> str:
    return reverse(f"commerce:{name}", args=[workspace.slug, *args])


def body(response: Any) -> str:
    return response.content.decode()


# --------------------------------------------------------------------------- access


def _store_urls(workspace: Any, store: Store) -> dict[str, tuple[str, str]]:
    return {
        "list": ("get", url("store_list", workspace)),
        "health": ("get", url("store_health", workspace, store.pk)),
        "connect": ("get", url("store_connect", workspace)),
        "new": ("get", url("store_new", workspace, "file")),
        "setup": ("get", url("store_setup", workspace, store.pk)),
        "edit": ("get", url("store_edit", workspace, store.pk)),
        "secret": ("post", url("store_secret", workspace, store.pk)),
        "status": ("post", url("store_status", workspace, store.pk)),
        "sync": ("post", url("store_sync", workspace, store.pk)),
        "test": ("post", url("store_test_delivery", workspace, store.pk)),
        "replay": ("post", url("delivery_replay", workspace, store.pk, 1)),
    }


VIEW_PAGES = {"list", "health"}


class TestAccess:
    def test_outsider_gets_404_everywhere(self, outsider, workspace, connector):
        store = make_store(workspace)
        for name, (method, address) in _store_urls(workspace, store).items():
            response = getattr(outsider.client, method)(address)
            assert response.status_code == 404, name
            assert "shopify shop" not in body(response)

    def test_member_role_gets_403_everywhere(self, member_user, workspace, connector):
        store = make_store(workspace)
        for name, (method, address) in _store_urls(workspace, store).items():
            assert getattr(member_user.client, method)(address).status_code == 403, name

    def test_analyst_and_moderator_view_but_cannot_change(
        self, analyst, moderator, workspace, connector
    ):
        store = make_store(workspace)
        for persona in (analyst, moderator):
            for name, (method, address) in _store_urls(workspace, store).items():
                status = getattr(persona.client, method)(address).status_code
                assert status == (200 if name in VIEW_PAGES else 403), (persona.role, name)
        assert Store.objects.get().status == Store.Status.ACTIVE

    def test_anonymous_is_sent_to_sign_in(self, client, workspace):
        response = client.get(url("store_list", workspace))
        assert response.status_code == 302
        assert "/accounts/login/" in response["Location"]

    def test_store_of_another_workspace_is_404(self, manager, other_workspace, connector):
        theirs = make_store(other_workspace)
        for name, (method, address) in _store_urls(manager.workspace, theirs).items():
            if name in {"list", "connect", "new"}:
                continue
            assert getattr(manager.client, method)(address).status_code == 404, name

    def test_posts_only(self, manager, workspace, connector):
        store = make_store(workspace)
        for name in ("store_secret", "store_status", "store_sync", "store_test_delivery"):
            assert manager.client.get(url(name, workspace, store.pk)).status_code == 405


# --------------------------------------------------------------------------- list and connect


class TestStoreList:
    def test_empty_state_invites_to_connect(self, manager, analyst, workspace):
        response = manager.client.get(url("store_list", workspace))
        assert "No store connected yet" in body(response)
        assert url("store_connect", workspace) in body(response)
        response = analyst.client.get(url("store_list", workspace))
        assert url("store_connect", workspace) not in body(response)
        assert "Ask an owner or a manager" in body(response)

    def test_stores_with_platform_status_and_health(
        self, analyst, workspace, other_workspace, django_assert_max_num_queries
    ):
        store = make_store(workspace, name="Bottega online")
        make_store(workspace, platform="file", name="Old orders")
        make_store(other_workspace, name="Their shop")
        Delivery.objects.create(
            workspace=workspace,
            store=store,
            topic="orders/create",
            dedupe_key="a",
            body="{}",
            received_at=T0,
            status=Delivery.Status.FAILED,
        )
        with django_assert_max_num_queries(8):
            response = analyst.client.get(url("store_list", workspace))
        page = body(response)
        assert "Bottega online" in page and "Old orders" in page
        assert "Their shop" not in page
        assert "1 failed" in page and "Filled by file imports" in page
        assert "Shopify" in page and "Active" in page


class TestConnect:
    def test_platform_choices_and_missing_connectors(self, manager, workspace, connector):
        response = manager.client.get(url("store_connect", workspace))
        assert response.status_code == 200
        choices = {choice.value: choice for choice in response.context["choices"]}
        assert list(choices) == ["shopify", "woocommerce", "bigcommerce", "saleor", "file"]
        assert choices["shopify"].available and choices["file"].available
        assert not choices["saleor"].available
        assert "not installed" in choices["saleor"].problem
        assert url("store_new", workspace, "shopify") in body(response)
        assert url("store_new", workspace, "saleor") not in body(response)

    def test_a_connector_that_fails_to_import_is_shown_not_raised(
        self, manager, workspace, monkeypatch
    ):
        def broken(platform: str) -> Connector:
            raise ImportError(f"cannot import name 'payloads' from {platform}")

        monkeypatch.setattr(commerce_views, "connector_for", broken)
        response = manager.client.get(url("store_connect", workspace))
        assert response.status_code == 200
        assert "could not be loaded" in body(response)
        response = manager.client.get(url("store_new", workspace, "woocommerce"))
        assert response.status_code == 200
        assert "could not be loaded" in body(response)
        assert "<form" not in body(response).split("</header>")[1]

    def test_missing_connector_setup_page_says_so(self, manager, workspace, connector):
        response = manager.client.get(url("store_new", workspace, "bigcommerce"))
        assert response.status_code == 200
        assert "BigCommerce connector is not installed" in body(response)
        response = manager.client.post(
            url("store_new", workspace, "bigcommerce"), {"name": "BC", "currency": "EUR"}
        )
        assert response.status_code == 200
        assert not Store.objects.exists()

    def test_unknown_platform_is_404(self, manager, workspace):
        assert manager.client.get(url("store_new", workspace, "magento")).status_code == 404


def _fill(guide: SetupGuide) -> dict[str, str]:
    values = {}
    for setup in guide.fields:
        value = "https://shop.example.com" if setup.target == "api_url" else f"v-{setup.name}"
        values[f"setting_{setup.name}"] = value
    return values


@pytest.mark.parametrize("platform", ["shopify", "woocommerce", "bigcommerce", "saleor"])
def test_installed_connectors_set_up_and_pass_their_test_delivery(manager, workspace, platform):
    """The real connectors, through the pages: their guide renders (secrets as password
    inputs), the store saves, and their own signed test delivery goes through the inbox."""
    try:
        guide = base.connector_for(platform).setup_guide()
    except (KeyError, ImportError) as error:
        response = manager.client.get(url("store_new", workspace, platform))
        assert response.status_code == 200
        assert "connector" in body(response), error
        return
    page = body(manager.client.get(url("store_new", workspace, platform)))
    assert page.count('type="password"') == sum(1 for f in guide.fields if f.secret)
    for step in guide.steps:
        assert str(step)[:30] in page.replace("&#x27;", "'").replace("&quot;", '"')
    data = {"name": f"{platform} shop", "currency": "EUR", **_fill(guide)}
    response = manager.client.post(url("store_new", workspace, platform), data)
    assert response.status_code == 302, response.context["form"].errors
    store = Store.objects.get(platform=platform)
    response = manager.client.post(
        url("store_test_delivery", workspace, store.pk), HTTP_HX_REQUEST="true"
    )
    assert 'data-result="ok"' in body(response), body(response)
    assert Delivery.objects.filter(store=store).exists()


class TestNewStore:
    def test_file_store_needs_name_and_currency(self, manager, workspace):
        response = manager.client.get(url("store_new", workspace, "file"))
        assert list(response.context["form"].fields) == ["name", "currency"]
        response = manager.client.post(
            url("store_new", workspace, "file"), {"name": " Archive ", "currency": "chf"}
        )
        store = Store.objects.get()
        assert (store.platform, store.name, store.currency) == ("file", "Archive", "CHF")
        assert response["Location"] == url("store_health", workspace, store.pk)
        assert AuditLog.objects.filter(action="store.create").count() == 1

    def test_bad_input_names_the_field_and_saves_nothing(self, manager, workspace):
        response = manager.client.post(
            url("store_new", workspace, "file"), {"name": "", "currency": "EURO"}
        )
        assert response.status_code == 400
        assert set(response.context["form"].errors) == {"name", "currency"}
        response = manager.client.post(
            url("store_new", workspace, "file"), {"name": "X", "currency": "ZZZ"}
        )
        assert response.status_code == 400
        assert "ISO 4217" in str(response.context["form"].errors["currency"])
        assert not Store.objects.exists()

    def test_guided_setup_seals_secrets_and_shows_the_webhook(self, manager, workspace, connector):
        response = manager.client.get(url("store_new", workspace, "shopify"))
        page = body(response)
        assert "Create a custom app in the Shopify admin." in page
        assert page.count('type="password"') == 2
        response = manager.client.post(
            url("store_new", workspace, "shopify"),
            {
                "name": "Bottega",
                "currency": "EUR",
                "setting_shop": "bottega.myshopify.com",
                "setting_api": "bottega.myshopify.com/admin",
                "setting_location": "42",
                "setting_access_token": TOKEN,
                "setting_secret": SECRET,
            },
        )
        store = Store.objects.get()
        assert response["Location"] == url("store_setup", workspace, store.pk)
        assert store.external_id == "bottega.myshopify.com"
        assert store.api_url == "https://bottega.myshopify.com/admin"
        assert store.credentials == {"location": "42", "access_token": TOKEN}
        assert store.webhook_secret == SECRET
        assert TOKEN not in store.credentials_sealed and SECRET not in store.webhook_secret_sealed
        audit = AuditLog.objects.get(action="store.create")
        assert TOKEN not in json.dumps(audit.data) and SECRET not in json.dumps(audit.data)

        setup = manager.client.get(response["Location"])
        page = body(setup)
        hook = f"http://testserver/hooks/shopify/{store.hook_token}/"
        assert hook in page
        assert "orders/create" in page and "refunds/create" in page
        assert 'data-copy="webhook-url"' in page
        assert SECRET not in page and TOKEN not in page
        assert setup["Cache-Control"] == "no-store"

    def test_required_settings(self, manager, workspace, connector):
        response = manager.client.post(
            url("store_new", workspace, "shopify"), {"name": "B", "currency": "EUR"}
        )
        assert response.status_code == 400
        errors = response.context["form"].errors
        assert {"setting_shop", "setting_access_token", "setting_secret"} <= set(errors)
        assert "setting_location" not in errors
        assert not Store.objects.exists()

    def test_typed_secret_is_never_rendered_back(self, manager, workspace, connector):
        response = manager.client.post(
            url("store_new", workspace, "shopify"),
            {
                "name": "",
                "currency": "EUR",
                "setting_secret": SECRET,
                "setting_access_token": TOKEN,
            },
        )
        assert response.status_code == 400
        assert SECRET not in body(response) and TOKEN not in body(response)


# --------------------------------------------------------------------------- setup


class TestTestDelivery:
    def test_with_htmx_the_result_shows_in_place(
        self, manager, workspace, connector, django_capture_on_commit_callbacks
    ):
        store = make_store(workspace, secret=SECRET)
        address = url("store_test_delivery", workspace, store.pk)
        with django_capture_on_commit_callbacks(execute=True):
            response = manager.client.post(address, HTTP_HX_REQUEST="true")
        assert response.status_code == 200
        assert 'data-result="ok"' in body(response)
        assert "app/ping" in body(response) and "queued" in body(response)
        delivery = Delivery.objects.get(store=store)
        assert delivery.status == Delivery.Status.PROCESSED
        again = manager.client.post(address, HTTP_HX_REQUEST="true")
        assert "duplicate" in body(again)
        assert Delivery.objects.get(store=store).duplicates == 1

    def test_without_javascript_it_redirects_with_a_message(self, manager, workspace, connector):
        store = make_store(workspace, secret=SECRET)
        response = manager.client.post(url("store_test_delivery", workspace, store.pk), follow=True)
        assert response.redirect_chain[-1][0] == url("store_setup", workspace, store.pk)
        assert "arrived and was verified" in body(response)


@pytest.mark.django_db(transaction=True)
class TestTestDeliveryProcessedAtOnce:
    """Without a task queue the delivery is processed as it is received (autocommit)."""

    def test_processed(self, manager, workspace, connector):
        store = make_store(workspace, secret=SECRET)
        response = manager.client.post(
            url("store_test_delivery", workspace, store.pk), HTTP_HX_REQUEST="true"
        )
        assert "arrived, was verified and was processed" in body(response)

    def test_processing_failure_shows_the_error(self, manager, workspace, connector):
        connector.ping = ("orders/create", {"id": "9"})
        store = make_store(workspace, secret=SECRET)
        response = manager.client.post(
            url("store_test_delivery", workspace, store.pk), HTTP_HX_REQUEST="true"
        )
        assert 'data-result="failed"' in body(response)
        assert "processing failed" in body(response) and "total: missing" in body(response)
        assert Delivery.objects.get(store=store).permanent


class TestTestDeliveryRefusals:
    def test_a_missing_secret_is_reported(self, manager, workspace, connector):
        store = make_store(workspace, secret="")
        response = manager.client.post(
            url("store_test_delivery", workspace, store.pk), HTTP_HX_REQUEST="true"
        )
        assert 'data-result="failed"' in body(response)
        assert "signature does not match" in body(response)
        assert not Delivery.objects.exists()

    def test_disconnected_store_and_missing_connector(self, manager, workspace, connector):
        store = make_store(workspace, secret=SECRET)
        Store.objects.filter(pk=store.pk).update(status=Store.Status.DISCONNECTED)
        response = manager.client.post(
            url("store_test_delivery", workspace, store.pk), HTTP_HX_REQUEST="true"
        )
        assert "reconnect it first" in body(response)
        woo = make_store(workspace, platform="woocommerce")
        response = manager.client.post(
            url("store_test_delivery", workspace, woo.pk), HTTP_HX_REQUEST="true"
        )
        assert "not installed" in body(response)
        assert not Delivery.objects.exists()

    def test_setup_page_of_a_store_whose_connector_is_missing(self, manager, workspace, connector):
        store = make_store(workspace, platform="saleor")
        response = manager.client.get(url("store_setup", workspace, store.pk))
        assert response.status_code == 200
        assert "Saleor connector is not installed" in body(response)
        assert store.hook_token in body(response)


# --------------------------------------------------------------------------- health


def delivery(store: Store, key: str, **fields: Any) -> Delivery:
    values: dict[str, Any] = {
        "topic": "orders/create",
        "body": json.dumps({"id": key, "total": 1500}),
        "received_at": T0,
        "status": Delivery.Status.PROCESSED,
    }
    values.update(fields)
    return Delivery.objects.create(
        workspace_id=store.workspace_id, store=store, dedupe_key=key, **values
    )


class TestHealth:
    def test_figures_and_failed_deliveries(
        self, manager, workspace, connector, django_assert_max_num_queries
    ):
        store = make_store(workspace)
        for n in range(30):
            delivery(store, f"ok{n}", processed_at=T0 + dt.timedelta(seconds=2), duplicates=1)
        for n in range(5):
            delivery(
                store,
                f"bad{n}",
                status=Delivery.Status.FAILED,
                body="{}",
                last_error=f"total: missing ({n})",
                attempts=2,
                next_attempt_at=T0,
            )
        SyncRun.objects.create(
            workspace=workspace,
            store=store,
            mode="reconcile",
            status="done",
            started_at=T0,
            repaired=4,
            repaired_detail={"orders:created": 4},
        )
        with django_assert_max_num_queries(12):
            response = manager.client.get(url("store_health", workspace, store.pk))
        page = body(response)
        assert response.context["health"].deliveries.failed == 5
        assert 'data-stat="received">35<' in page
        assert 'data-stat="duplicates">30<' in page
        assert "2.0 s" in page
        assert "It repaired 4 records" in page and "orders created: 4" in page
        assert "total: missing (3)" in page
        assert page.count('data-action="replay"') == 5
        assert 'data-action="reconcile"' in page

    def test_query_count_does_not_grow_with_failures(
        self, manager, workspace, connector, django_assert_max_num_queries
    ):
        store = make_store(workspace)
        for n in range(60):
            delivery(store, f"bad{n}", status=Delivery.Status.FAILED, last_error="x")
            SyncRun.objects.create(workspace=workspace, store=store, mode="backfill", started_at=T0)
        with django_assert_max_num_queries(12):
            assert manager.client.get(url("store_health", workspace, store.pk)).status_code == 200

    def test_analyst_sees_no_buttons(self, analyst, workspace, connector):
        store = make_store(workspace)
        delivery(store, "bad", status=Delivery.Status.FAILED, last_error="boom")
        page = body(analyst.client.get(url("store_health", workspace, store.pk)))
        assert "boom" in page
        assert 'data-action="replay"' not in page and 'data-action="backfill"' not in page

    def test_empty_store_explains_what_to_do(self, manager, workspace, connector):
        store = make_store(workspace)
        page = body(manager.client.get(url("store_health", workspace, store.pk)))
        assert "No delivery received yet" in page
        assert "No failed deliveries." in page and "No backfill or reconciliation yet." in page

    def test_file_store(self, manager, workspace):
        store = make_store(workspace, platform="file")
        page = body(manager.client.get(url("store_health", workspace, store.pk)))
        assert "filled by file imports" in page


class TestReplay:
    def test_replay_processes_a_fixed_delivery(
        self, manager, workspace, connector, django_capture_on_commit_callbacks
    ):
        store = make_store(workspace)
        failed = delivery(
            store, "1", status=Delivery.Status.FAILED, attempts=8, last_error="total: missing"
        )
        with django_capture_on_commit_callbacks(execute=True):
            response = manager.client.post(url("delivery_replay", workspace, store.pk, failed.pk))
        assert response["Location"].endswith("#failed")
        failed.refresh_from_db()
        assert failed.status == Delivery.Status.PROCESSED
        assert Order.objects.get(store=store).total_minor == 1500
        assert AuditLog.objects.filter(action="delivery.replay").count() == 1

    def test_only_failed_deliveries(self, manager, workspace, connector):
        store = make_store(workspace)
        done = delivery(store, "1")
        response = manager.client.post(
            url("delivery_replay", workspace, store.pk, done.pk), follow=True
        )
        assert "Only failed deliveries can be replayed." in body(response)

    def test_delivery_of_another_store_is_404(self, manager, workspace, other_workspace):
        mine = make_store(workspace)
        theirs = make_store(other_workspace)
        failed = delivery(theirs, "1", status=Delivery.Status.FAILED)
        assert (
            manager.client.post(url("delivery_replay", workspace, mine.pk, failed.pk)).status_code
            == 404
        )
        failed.refresh_from_db()
        assert failed.status == Delivery.Status.FAILED


class TestSync:
    def test_backfill_now_runs_the_sync_task(
        self, manager, workspace, connector, django_capture_on_commit_callbacks
    ):
        store = make_store(workspace)
        with django_capture_on_commit_callbacks(execute=True):
            response = manager.client.post(
                url("store_sync", workspace, store.pk), {"mode": "backfill"}, follow=True
            )
        assert "Backfill started" in body(response)
        run = SyncRun.objects.get(store=store)
        assert (run.mode, run.status, run.repaired) == ("backfill", "done", 1)
        assert Order.objects.filter(store=store, external_id="B1").exists()

    def test_reconcile_now(self, manager, workspace, connector, django_capture_on_commit_callbacks):
        store = make_store(workspace)
        with django_capture_on_commit_callbacks(execute=True):
            manager.client.post(url("store_sync", workspace, store.pk), {"mode": "reconcile"})
        assert SyncRun.objects.get(store=store).mode == "reconcile"

    @pytest.mark.parametrize(
        ("platform", "status", "mode", "message"),
        [
            ("shopify", Store.Status.PAUSED, "backfill", "Resume the store"),
            ("file", Store.Status.ACTIVE, "backfill", "filled by file imports"),
            ("saleor", Store.Status.ACTIVE, "backfill", "not installed"),
            ("shopify", Store.Status.ACTIVE, "everything", "Choose a backfill"),
        ],
    )
    def test_refused_with_a_reason(
        self,
        manager,
        workspace,
        connector,
        django_capture_on_commit_callbacks,
        platform,
        status,
        mode,
        message,
    ):
        store = make_store(workspace, platform=platform)
        Store.objects.filter(pk=store.pk).update(status=status)
        with django_capture_on_commit_callbacks(execute=True):
            response = manager.client.post(
                url("store_sync", workspace, store.pk), {"mode": mode}, follow=True
            )
        assert message in body(response)
        assert not SyncRun.objects.exists()


# --------------------------------------------------------------------------- settings


def _edit_post(**over: str) -> dict[str, str]:
    data = {
        "name": "Bottega",
        "currency": "EUR",
        "setting_shop": "bottega.myshopify.com",
        "setting_api": "",
        "setting_location": "42",
        "setting_access_token": "",
        "setting_secret": "",
    }
    data.update(over)
    return data


class TestEdit:
    @pytest.fixture
    def store(self, workspace: Any) -> Store:
        return make_store(
            workspace,
            name="Bottega",
            secret=SECRET,
            external_id="bottega.myshopify.com",
            credentials={"access_token": TOKEN, "location": "7"},
        )

    def test_secrets_say_set_and_are_never_shown(self, manager, workspace, connector, store):
        page = body(manager.client.get(url("store_edit", workspace, store.pk)))
        assert SECRET not in page and TOKEN not in page
        assert page.count('data-secret="set"') == 3  # two settings and the rotate section
        assert 'value="bottega.myshopify.com"' in page and 'value="7"' in page

    def test_blank_secrets_keep_the_stored_ones(self, manager, workspace, connector, store):
        response = manager.client.post(url("store_edit", workspace, store.pk), _edit_post())
        assert response.status_code == 302
        store.refresh_from_db()
        assert store.credentials == {"access_token": TOKEN, "location": "42"}
        assert store.webhook_secret == SECRET
        audit = AuditLog.objects.filter(action="store.update").get()
        assert audit.data == {"fields": ["credentials"]}

    def test_unchanged_settings_write_nothing(self, manager, workspace, connector, store):
        manager.client.post(
            url("store_edit", workspace, store.pk), _edit_post(setting_location="7")
        )
        assert not AuditLog.objects.filter(action="store.update").exists()

    def test_new_secrets_replace_the_old(self, manager, workspace, connector, store):
        manager.client.post(
            url("store_edit", workspace, store.pk),
            _edit_post(setting_access_token="new-token", setting_secret="new-secret", name="B2"),
        )
        store.refresh_from_db()
        assert store.credentials["access_token"] == "new-token"
        assert store.webhook_secret == "new-secret"
        assert store.name == "B2"

    def test_bad_input(self, manager, workspace, connector, store):
        response = manager.client.post(
            url("store_edit", workspace, store.pk),
            _edit_post(currency="XYZ", setting_api="not a url at all"),
        )
        assert response.status_code == 400
        assert "setting_api" in response.context["form"].errors
        response = manager.client.post(
            url("store_edit", workspace, store.pk), _edit_post(currency="XYZ")
        )
        assert response.status_code == 400
        assert "currency" in response.context["form"].errors
        store.refresh_from_db()
        assert store.currency == "EUR"

    def test_edit_without_an_installed_connector(self, manager, workspace, connector):
        store = make_store(workspace, platform="bigcommerce")
        response = manager.client.get(url("store_edit", workspace, store.pk))
        assert response.status_code == 200
        assert "BigCommerce connector is not installed" in body(response)
        response = manager.client.post(
            url("store_edit", workspace, store.pk), {"name": "Renamed", "currency": "EUR"}
        )
        assert response.status_code == 302
        store.refresh_from_db()
        assert store.name == "Renamed"


class TestSecretRotation:
    def test_typed_secret(self, manager, workspace, connector):
        store = make_store(workspace, secret=SECRET)
        response = manager.client.post(
            url("store_secret", workspace, store.pk), {"secret": "rotated-secret"}
        )
        assert response.status_code == 302
        store.refresh_from_db()
        assert store.webhook_secret == "rotated-secret"
        assert AuditLog.objects.get(action="store.update").data == {"fields": ["webhook_secret"]}

    def test_generated_secret_is_shown_once(self, manager, workspace, connector):
        store = make_store(workspace, secret=SECRET)
        response = manager.client.post(url("store_secret", workspace, store.pk), {"generate": "on"})
        assert response.status_code == 200
        assert response["Cache-Control"] == "no-store"
        store.refresh_from_db()
        assert store.webhook_secret != SECRET and len(store.webhook_secret) >= 40
        assert store.webhook_secret in body(response)
        again = manager.client.get(url("store_edit", workspace, store.pk))
        assert store.webhook_secret not in body(again)

    @pytest.mark.parametrize(
        ("data", "field"),
        [({}, "secret"), ({"secret": "x", "generate": "on"}, "generate")],
    )
    def test_bad_input(self, manager, workspace, connector, data, field):
        store = make_store(workspace, secret=SECRET)
        response = manager.client.post(url("store_secret", workspace, store.pk), data)
        assert response.status_code == 400
        assert field in response.context["secret_form"].errors
        store.refresh_from_db()
        assert store.webhook_secret == SECRET

    def test_file_store_has_no_secret(self, manager, workspace):
        store = make_store(workspace, platform="file", secret="")
        response = manager.client.post(
            url("store_secret", workspace, store.pk), {"secret": "x"}, follow=True
        )
        assert "do not receive webhooks" in body(response)
        store.refresh_from_db()
        assert store.webhook_secret == ""


class TestStatus:
    def test_pause_resume_disconnect_reconnect(self, manager, workspace, connector):
        store = make_store(workspace, secret=SECRET)
        address = url("store_status", workspace, store.pk)
        for action, status in (
            ("pause", "paused"),
            ("resume", "active"),
            ("disconnect", "disconnected"),
            ("reconnect", "active"),
        ):
            assert manager.client.post(address, {"action": action}).status_code == 302
            store.refresh_from_db()
            assert store.status == status
        assert AuditLog.objects.filter(action="store.update").count() == 4

    def test_disconnected_store_refuses_webhooks(self, manager, client, workspace, connector):
        store = make_store(workspace, secret=SECRET)
        manager.client.post(url("store_status", workspace, store.pk), {"action": "disconnect"})
        headers, payload = signed(store, "orders/create", {"id": 1, "total": 10})
        response = client.post(
            f"/hooks/shopify/{store.hook_token}/",
            payload,
            content_type="application/json",
            headers=headers,
        )
        assert response.status_code == 404

    def test_htmx_disconnect_reloads_the_page(self, manager, workspace, connector):
        store = make_store(workspace)
        response = manager.client.post(
            url("store_status", workspace, store.pk),
            {"action": "disconnect"},
            HTTP_HX_REQUEST="true",
        )
        assert response["HX-Redirect"] == url("store_edit", workspace, store.pk)

    def test_unknown_action(self, manager, workspace):
        store = make_store(workspace)
        response = manager.client.post(
            url("store_status", workspace, store.pk), {"action": "delete"}, follow=True
        )
        assert "Choose pause, resume, disconnect or reconnect." in body(response)
        assert Store.objects.get().status == "active"


# --------------------------------------------------------------------------- member orders


def order_for(store: Store, n: int, *, email: str = "ada@example.com", **extra: Any) -> None:
    lines = (
        LineIn(external_id="L1", quantity=2, unit_price_minor=1250, product_external_id="P1"),
        LineIn(external_id="L2", quantity=1, unit_price_minor=990, sku="CUP-1", title="Cup"),
    )
    order_upsert(
        store=store,
        order=OrderIn(
            external_id=str(n),
            number=f"#{1000 + n}",
            currency="EUR",
            placed_at=T0 + dt.timedelta(days=n),
            updated_at=T0 + dt.timedelta(days=n),
            status=extra.pop("status", "paid"),
            total_minor=extra.pop("total", 3490),
            customer=CustomerIn(email=email, first_name=email.split("@")[0].title()),
            lines=lines,
            **extra,
        ),
    )


def member_named(workspace: Any, name: str) -> Member:
    return Member.objects.get(workspace=workspace, display_name=name, merged_into__isnull=True)


class TestOrdersPanel:
    @pytest.fixture
    def shop(self, workspace: Any) -> Store:
        store = make_store(workspace, name="Bottega online")
        product_upsert(store=store, product=ProductIn(external_id="P1", title="Moka pot"))
        return store

    def test_panel_with_summary_products_and_orders(self, moderator, workspace, shop):
        order_for(shop, 1, fulfilled_at=T0 + dt.timedelta(days=2))
        order_for(shop, 2)
        ada = member_named(workspace, "Ada")
        response = moderator.client.get(
            url("member_orders", workspace, ada.pk), HTTP_HX_REQUEST="true"
        )
        assert response.status_code == 200
        page = body(response)
        assert "<html" not in page
        assert 'data-stat="spend">EUR 69.80<' in page
        assert 'data-stat="aov">EUR 34.90<' in page
        assert 'data-stat="orders">2<' in page
        assert "Moka pot" in page and "verified buyer" in page and "delivered" in page
        assert page.index("#1002") < page.index("#1001")
        assert "2 × Moka pot" in page and "(CUP-1)" in page and "net EUR 25.00" in page
        assert "HX-Request" in response["Vary"]

    def test_refunded_and_cancelled_orders(self, moderator, workspace, shop):
        order_for(shop, 1, cancelled_at=T0 + dt.timedelta(days=1))
        ada = member_named(workspace, "Ada")
        page = body(
            moderator.client.get(url("member_orders", workspace, ada.pk), HTTP_HX_REQUEST="true")
        )
        assert "Cancelled" in page and "nothing counts towards spend" in page
        assert "No product bought and kept yet." in page

    def test_only_web_addresses_become_links(self, moderator, workspace, shop):
        product_upsert(
            store=shop,
            product=ProductIn(external_id="P1", title="Moka pot", url="javascript:alert(1)"),
        )
        order_for(shop, 1)
        ada = member_named(workspace, "Ada")
        address = url("member_orders", workspace, ada.pk)
        page = body(moderator.client.get(address, HTTP_HX_REQUEST="true"))
        assert "javascript:" not in page and "Moka pot" in page
        product_upsert(
            store=shop,
            product=ProductIn(
                external_id="P1",
                title="Moka pot",
                url="https://shop.example.com/moka",
                updated_at=T0,
            ),
        )
        page = body(moderator.client.get(address, HTTP_HX_REQUEST="true"))
        assert 'href="https://shop.example.com/moka"' in page

    def test_empty_state(self, moderator, workspace):
        member = Member.objects.create(workspace=workspace, display_name="Nobody")
        page = body(
            moderator.client.get(url("member_orders", workspace, member.pk), HTTP_HX_REQUEST="true")
        )
        assert 'data-empty="orders"' in page

    def test_pages_and_query_count(self, moderator, workspace, shop, django_assert_max_num_queries):
        order_for(shop, 0)
        ada = member_named(workspace, "Ada")
        address = url("member_orders", workspace, ada.pk)
        with django_assert_max_num_queries(14):
            moderator.client.get(address, HTTP_HX_REQUEST="true")
        for n in range(1, 25):
            order_for(shop, n)
        with django_assert_max_num_queries(14):
            first = moderator.client.get(address, HTTP_HX_REQUEST="true")
        assert len(first.context["orders"]) == 10
        assert f'hx-get="{address}?page=2"' in body(first)
        last = moderator.client.get(address, {"page": "3"}, HTTP_HX_REQUEST="true")
        assert [row.order.number for row in last.context["orders"]] == [
            "#1004",
            "#1003",
            "#1002",
            "#1001",
            "#1000",
        ]
        assert moderator.client.get(address, {"page": "x"}).status_code == 200

    def test_without_htmx_a_full_page(self, moderator, workspace, shop):
        order_for(shop, 1)
        ada = member_named(workspace, "Ada")
        page = body(moderator.client.get(url("member_orders", workspace, ada.pk)))
        assert "<html" in page and "Orders of Ada" in page

    def test_access(self, member_user, outsider, analyst, workspace, other_workspace, shop):
        order_for(shop, 1)
        ada = member_named(workspace, "Ada")
        address = url("member_orders", workspace, ada.pk)
        assert analyst.client.get(address).status_code == 200
        assert member_user.client.get(address).status_code == 403
        response = outsider.client.get(address)
        assert response.status_code == 404 and "#1001" not in body(response)
        # The outsider's own workspace with this member's id: not theirs either.
        assert outsider.client.get(url("member_orders", other_workspace, ada.pk)).status_code == 404
        assert analyst.client.get(url("member_orders", workspace, 999999)).status_code == 404

    def test_profile_loads_the_panel_with_htmx(self, moderator, workspace, shop):
        order_for(shop, 1)
        ada = member_named(workspace, "Ada")
        profile = reverse("people:member_detail", args=[workspace.slug, ada.pk])
        page = body(moderator.client.get(profile))
        assert f'hx-get="{url("member_orders", workspace, ada.pk)}"' in page
        assert 'hx-trigger="load"' in page


# --------------------------------------------------------------------------- member list


def list_names(persona: Any, **params: str) -> list[str]:
    response = persona.client.get(
        reverse("people:member_list", args=[persona.workspace.slug]), params
    )
    assert response.status_code == 200
    return sorted(row.member.display_name for row in response.context["rows"])


def export_names(persona: Any, **params: str) -> list[str]:
    response = persona.client.get(
        reverse("people:member_export", args=[persona.workspace.slug]), params
    )
    text = b"".join(response.streaming_content).decode("utf-8")[1:]
    return sorted(row["display_name"] for row in csv.DictReader(io.StringIO(text)))


class TestMemberListPurchaseFilters:
    @pytest.fixture
    def buyers(self, workspace: Any, other_workspace: Any) -> None:
        shop = make_store(workspace)
        product_upsert(store=shop, product=ProductIn(external_id="P1", title="Moka Pot Deluxe"))
        order_for(shop, 1, email="ada@example.com", total=1000)  # Ada: 1 order, 10.00
        order_for(shop, 40, email="bea@example.com", total=5000)  # Bea: 2 orders, 70.00
        order_for(shop, 41, email="bea@example.com", total=2000)
        order_for(shop, 3, email="cy@example.com", total=900, cancelled_at=T0)  # Cy: cancelled
        Member.objects.create(workspace=workspace, display_name="Dan")  # never bought
        elsewhere = make_store(other_workspace)
        order_for(elsewhere, 1, email="eve@example.com", total=99999)

    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            ({}, ["Ada", "Bea", "Cy", "Dan"]),
            ({"min_spend": "10"}, ["Ada", "Bea"]),
            ({"min_spend": "10.01"}, ["Bea"]),
            ({"max_spend": "10"}, ["Ada", "Cy", "Dan"]),
            ({"min_spend": "5", "max_spend": "69.99"}, ["Ada"]),
            ({"min_orders": "2"}, ["Bea"]),
            ({"min_orders": "1"}, ["Ada", "Bea"]),
            ({"product": "moka pot"}, ["Ada", "Bea"]),
            ({"product": "cup-1"}, ["Ada", "Bea"]),
            ({"product": "CUP"}, ["Ada", "Bea"]),
            ({"product": "teapot"}, []),
            ({"last_order_after": "2026-03-31"}, ["Bea"]),
            ({"last_order_before": "2026-03-02"}, ["Ada"]),
            ({"last_order_before": "2026-04-11"}, ["Ada", "Bea"]),
            ({"min_spend": "abc", "min_orders": "-3", "last_order_after": "0001-01-01"}, None),
        ],
    )
    def test_filters_and_export_agree(self, analyst, buyers, params, expected):
        if expected is None:  # bad values are dropped, like the list's other filters
            expected = ["Ada", "Bea", "Cy", "Dan"]
        assert list_names(analyst, **params) == expected
        assert export_names(analyst, **params) == expected

    def test_the_form_keeps_the_values(self, analyst, buyers):
        response = analyst.client.get(
            reverse("people:member_list", args=[analyst.workspace.slug]),
            {"min_spend": "10.50", "product": "moka", "last_order_after": "2026-03-01"},
        )
        page = body(response)
        assert 'name="product" id="id_product" maxlength="200" value="moka"' in page
        assert 'value="2026-03-01"' in page
        assert "min_spend=10.5" in response.context["page_query"]


@hypothesis_settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "min_spend",
                "max_spend",
                "min_orders",
                "product",
                "last_order_after",
                "last_order_before",
            ]
        ),
        st.one_of(
            st.text(max_size=20),
            st.decimals(allow_nan=True, allow_infinity=True).map(str),
            st.integers(-5, 10**7).map(str),
            st.dates().map(str),
        ),
    )
)
def test_purchase_filters_round_trip(params):
    filters = MemberFilterForm(QueryDict(urlencode(params)), tags=[]).filters()
    again = MemberFilterForm(QueryDict(filters.as_query()), tags=[]).filters()
    assert again == filters
    bounds = filters.purchase_bounds("EUR")
    for key in ("min_spend_minor", "max_spend_minor"):
        assert bounds[key] is None or (isinstance(bounds[key], int) and bounds[key] >= 0)
    assert filters.min_spend is None or filters.min_spend >= Decimal(0)
