"""Store pages (list, connect, setup, health, settings) and the member profile's orders panel.

Every form posts to its own URL and works without JavaScript (redirect back with a message);
the test delivery answers htmx with its result in place, and the orders panel is loaded into
the member profile with htmx. Reading needs VIEW_STORES, changing needs MANAGE_STORES.
A connector that is missing or fails to import is shown as unavailable, never as an error page.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from circolo.commerce.connectors.base import Connector, SetupGuide, connector_for
from circolo.commerce.forms import (
    STATUS_ACTIONS,
    SecretRotateForm,
    StoreSetupForm,
    StoreStatusForm,
    StoreSyncForm,
)
from circolo.commerce.models import Delivery, Order, Platform, Store, SyncRun
from circolo.commerce.money import format_money
from circolo.commerce.selectors import (
    BoughtProduct,
    MemberSummary,
    member_bought_products,
    member_orders,
    member_summary,
    order_line_net_merchandise,
    store_health,
    workspace_stores,
)
from circolo.commerce.services import StoreError, store_create, store_update
from circolo.commerce.tasks import store_sync_task
from circolo.commerce.webhooks import delivery_receive, delivery_replay
from circolo.core.background import enqueue_on_commit
from circolo.core.permissions import ROLE_PERMISSIONS, Perm
from circolo.core.web import WorkspaceRequest, workspace_view
from circolo.people.models import Member
from circolo.people.selectors import member_get

logger = logging.getLogger(__name__)

# The order the connect page offers the platforms in.
CONNECT_ORDER = (
    Platform.SHOPIFY,
    Platform.WOOCOMMERCE,
    Platform.BIGCOMMERCE,
    Platform.SALEOR,
    Platform.FILE,
)
GENERATED_SECRET_BYTES = 32


# --------------------------------------------------------------------------- helpers


def _can_manage(request: WorkspaceRequest) -> bool:
    return Perm.MANAGE_STORES in ROLE_PERMISSIONS[request.workspace_role]


def _is_htmx(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not getattr(htmx, "history_restore_request", False)


def _back(request: HttpRequest, url: str) -> HttpResponse:
    """Redirect after a POST; htmx requests get a client-side redirect so the page reloads."""
    if _is_htmx(request):
        return HttpResponseClientRedirect(url)
    return HttpResponseRedirect(url)


def _store(request: WorkspaceRequest, store_id: int) -> Store:
    store = Store.objects.filter(workspace=request.workspace, pk=store_id).first()
    if store is None:
        raise Http404(_("No such store."))
    return store


def _url(name: str, request: WorkspaceRequest, *args: Any) -> str:
    return reverse(f"commerce:{name}", args=[request.workspace.slug, *args])


def _platform_label(platform: str) -> str:
    return str(Platform(platform).label) if platform in Platform.values else platform


@dataclass(frozen=True)
class Loaded:
    """A platform's connector and setup guide, or why they cannot be used."""

    connector: Connector | None
    guide: SetupGuide | None
    problem: str = ""


def _load(platform: str) -> Loaded:
    """The connector of a platform; file imports need none. Connectors are written and
    installed separately, so a missing or broken one is reported, not raised."""
    if platform == Platform.FILE:
        return Loaded(connector=None, guide=None)
    label = _platform_label(platform)
    try:
        connector = connector_for(platform)
    except KeyError:
        return Loaded(
            None,
            None,
            _("The %(platform)s connector is not installed in this Circolo yet.")
            % {"platform": label},
        )
    except ImportError:
        # The details are for the administrator's log, not for the page.
        logger.exception("the %s connector failed to import", platform)
        return Loaded(
            None,
            None,
            _(
                "The %(platform)s connector could not be loaded. Ask your administrator to"
                " check the server log."
            )
            % {"platform": label},
        )
    return Loaded(connector=connector, guide=connector.setup_guide())


def _form_errors(form: StoreSetupForm, error: StoreError) -> None:
    """Service errors onto the form: on the field they name, else at the top."""
    targets = {"name": "name", "currency": "currency"}
    for name, setup in form.setups.items():
        targets.setdefault(setup.target, name)
    for field, message in error.errors.items():
        target = targets.get(field)
        form.add_error(target if target in form.fields else None, message)


def _webhook_url(request: WorkspaceRequest, store: Store) -> str:
    path = reverse(
        "webhook-receive", kwargs={"platform": store.platform, "token": store.hook_token}
    )
    return request.build_absolute_uri(path)


# --------------------------------------------------------------------------- list and connect


@workspace_view(Perm.VIEW_STORES)
def store_list(request: WorkspaceRequest) -> HttpResponse:
    """The workspace's stores with their platform, status and a health summary."""
    return render(
        request,
        "commerce/store_list.html",
        {
            "overviews": workspace_stores(workspace=request.workspace),
            "can_manage": _can_manage(request),
        },
    )


@dataclass(frozen=True)
class PlatformChoice:
    value: str
    label: str
    available: bool
    problem: str


@workspace_view(Perm.MANAGE_STORES)
def store_connect(request: WorkspaceRequest) -> HttpResponse:
    """Choose the platform of a new store."""
    choices = []
    for platform in CONNECT_ORDER:
        loaded = _load(platform)
        choices.append(
            PlatformChoice(
                value=platform.value,
                label=str(platform.label),
                available=not loaded.problem,
                problem=loaded.problem,
            )
        )
    return render(request, "commerce/store_connect.html", {"choices": choices})


@workspace_view(Perm.MANAGE_STORES)
def store_new(request: WorkspaceRequest, platform: str) -> HttpResponse:
    """The setup form of a new store of one platform; a file-import store needs only a name
    and a currency. Saving leads to the setup page with the webhook address."""
    if platform not in Platform.values:
        raise Http404(_("No such platform."))
    loaded = _load(platform)
    context: dict[str, Any] = {
        "platform": platform,
        "platform_label": _platform_label(platform),
        "guide": loaded.guide,
        "problem": loaded.problem,
    }
    if loaded.problem:
        return render(request, "commerce/store_new.html", context)
    form = StoreSetupForm(
        request.POST or None,
        guide=loaded.guide,
        initial={"currency": request.workspace.currency},
    )
    context["form"] = form
    if request.method != "POST":
        return render(request, "commerce/store_new.html", context)
    if form.is_valid():
        values = form.store_values()
        try:
            store = store_create(
                workspace=request.workspace, platform=platform, actor=request.user, **values
            )
        except StoreError as error:
            _form_errors(form, error)
        else:
            messages.success(request, _("Store %(name)s saved.") % {"name": store.name})
            if platform == Platform.FILE:
                return HttpResponseRedirect(_url("store_health", request, store.pk))
            return HttpResponseRedirect(_url("store_setup", request, store.pk))
    return render(request, "commerce/store_new.html", context, status=400)


# --------------------------------------------------------------------------- setup


@workspace_view(Perm.MANAGE_STORES)
def store_setup(request: WorkspaceRequest, store_id: int) -> HttpResponse:
    """What to do on the platform's side: the webhook address to paste, the topics to
    subscribe, the guide's steps, and a button that sends a test delivery."""
    store = _store(request, store_id)
    loaded = _load(store.platform)
    response = render(
        request,
        "commerce/store_setup.html",
        {
            "store": store,
            "platform_label": _platform_label(store.platform),
            "guide": loaded.guide,
            "problem": loaded.problem,
            "is_file": store.platform == Platform.FILE,
            "webhook_url": _webhook_url(request, store),
        },
    )
    # The address carries the store's secret token: keep it out of every cache.
    response["Cache-Control"] = "no-store"
    return response


@dataclass(frozen=True)
class TestResult:
    ok: bool
    message: str
    detail: str = ""


def _test_delivery(store: Store, connector: Connector) -> TestResult:
    headers, body = connector.test_delivery(store=store)
    received = delivery_receive(
        platform=store.platform, token=store.hook_token, headers=headers, body=body
    )
    if received.result == "bad_signature":
        return TestResult(
            False,
            _(
                "The test delivery was refused: its signature does not match the webhook"
                " secret saved here. Enter the secret again under Settings."
            ),
        )
    if received.result == "duplicate":
        return TestResult(
            True,
            _(
                "The test delivery arrived and was verified. The same test was received"
                " before, so this copy was counted as a duplicate."
            ),
        )
    if received.result != "accepted" or received.delivery_id is None:
        return TestResult(
            False,
            _("The test delivery was not accepted (%(result)s).") % {"result": received.result},
        )
    # Receiving schedules the processing: without a task queue it has run by now, with
    # one it may still be waiting. Either way the page tells what is known.
    delivery = (
        Delivery.objects.filter(pk=received.delivery_id, store=store)
        .only("status", "topic", "last_error")
        .first()
    )
    if delivery is None:
        return TestResult(False, _("The test delivery was accepted but is no longer stored."))
    names = {"topic": delivery.topic}
    if delivery.status == Delivery.Status.FAILED:
        return TestResult(
            False,
            _("The test delivery (%(topic)s) was verified but processing failed.") % names,
            detail=delivery.last_error,
        )
    if delivery.status == Delivery.Status.PENDING:
        return TestResult(
            True,
            _(
                "The test delivery (%(topic)s) arrived and was verified. It is queued for"
                " processing; the health page shows how it went."
            )
            % names,
        )
    return TestResult(
        True,
        _("The test delivery (%(topic)s) arrived, was verified and was processed.") % names,
    )


@workspace_view(Perm.MANAGE_STORES)
@require_POST
def store_test_delivery(request: WorkspaceRequest, store_id: int) -> HttpResponse:
    """Send the connector's signed test delivery through the real inbox, in process."""
    store = _store(request, store_id)
    loaded = _load(store.platform)
    if store.status == Store.Status.DISCONNECTED:
        result = TestResult(False, _("This store is disconnected: reconnect it first."))
    elif loaded.connector is None:
        result = TestResult(
            False, loaded.problem or _("File-import stores do not receive webhooks.")
        )
    else:
        result = _test_delivery(store, loaded.connector)
    if _is_htmx(request):
        return render(request, "commerce/_store_test_result.html", {"result": result})
    if result.ok:
        messages.success(request, result.message)
    else:
        text = f"{result.message} {result.detail}".strip()
        messages.error(request, text)
    return HttpResponseRedirect(_url("store_setup", request, store.pk))


# --------------------------------------------------------------------------- health


def _sync_label(run: SyncRun) -> str:
    return str(SyncRun.Mode(run.mode).label) if run.mode in SyncRun.Mode.values else run.mode


def _repaired_items(detail: dict[str, Any]) -> list[tuple[str, Any]]:
    """A sync's repaired_detail ({"orders:created": 2}) as readable labels with counts."""
    resources = {"customers": _("customers"), "products": _("products"), "orders": _("orders")}
    outcomes = {
        "created": _("created"),
        "updated": _("updated"),
        "invalid": _("skipped as invalid"),
    }
    items = []
    for key, count in sorted(detail.items()):
        resource, _sep, outcome = str(key).partition(":")
        label = _("%(resource)s %(outcome)s") % {
            "resource": resources.get(resource, resource),
            "outcome": outcomes.get(outcome, outcome),
        }
        items.append((label, count))
    return items


@dataclass(frozen=True)
class SyncRow:
    run: SyncRun
    label: str
    repaired: list[tuple[str, Any]]


@workspace_view(Perm.VIEW_STORES)
def store_health_view(request: WorkspaceRequest, store_id: int) -> HttpResponse:
    """A store's webhook inbox, signatures, processing latency, syncs and failed deliveries."""
    store = _store(request, store_id)
    health = store_health(store=store)
    loaded = _load(store.platform)
    return render(
        request,
        "commerce/store_health.html",
        {
            "store": store,
            "health": health,
            "platform_label": _platform_label(store.platform),
            "problem": loaded.problem,
            "is_file": store.platform == Platform.FILE,
            "can_manage": _can_manage(request),
            "can_sync": loaded.connector is not None and store.status == Store.Status.ACTIVE,
            "syncs": [
                SyncRow(
                    run=run, label=_sync_label(run), repaired=_repaired_items(run.repaired_detail)
                )
                for run in health.recent_syncs
            ],
            "last_repaired": _repaired_items(health.last_reconciliation.repaired_detail)
            if health.last_reconciliation is not None
            else [],
        },
    )


@workspace_view(Perm.MANAGE_STORES)
@require_POST
def store_sync_view(request: WorkspaceRequest, store_id: int) -> HttpResponse:
    """Queue a backfill or a reconciliation of the store."""
    store = _store(request, store_id)
    form = StoreSyncForm(request.POST)
    back = _url("store_health", request, store.pk)
    if not form.is_valid():
        messages.error(request, _("Choose a backfill or a reconciliation."))
        return _back(request, back)
    loaded = _load(store.platform)
    if loaded.connector is None:
        messages.error(
            request, loaded.problem or _("File-import stores are filled by file imports.")
        )
    elif store.status != Store.Status.ACTIVE:
        messages.error(request, _("Resume the store before syncing it."))
    else:
        mode = form.cleaned_data["mode"]
        enqueue_on_commit(store_sync_task, store.pk, mode)
        if mode == SyncRun.Mode.BACKFILL:
            messages.success(
                request, _("Backfill started: the store's past data is being fetched.")
            )
        else:
            messages.success(
                request, _("Reconciliation started: recent changes are being compared.")
            )
    return _back(request, back)


@workspace_view(Perm.MANAGE_STORES)
@require_POST
def delivery_replay_view(
    request: WorkspaceRequest, store_id: int, delivery_id: int
) -> HttpResponse:
    """Put a failed delivery back in the queue."""
    store = _store(request, store_id)
    delivery = (
        Delivery.objects.filter(workspace=request.workspace, store=store, pk=delivery_id)
        .select_related("store__workspace")
        .defer("body")
        .first()
    )
    if delivery is None:
        raise Http404(_("No such delivery."))
    if delivery.status != Delivery.Status.FAILED:
        messages.error(request, _("Only failed deliveries can be replayed."))
    else:
        delivery_replay(delivery=delivery, actor=request.user)
        messages.success(
            request,
            _("Delivery %(topic)s queued again.") % {"topic": delivery.topic},
        )
    return _back(request, _url("store_health", request, store.pk) + "#failed")


# --------------------------------------------------------------------------- settings


def _edit_context(
    request: WorkspaceRequest, store: Store, loaded: Loaded, **overrides: Any
) -> dict[str, Any]:
    context: dict[str, Any] = {
        "store": store,
        "platform_label": _platform_label(store.platform),
        "problem": loaded.problem,
        "is_file": store.platform == Platform.FILE,
        "form": StoreSetupForm(guide=loaded.guide, store=store),
        "secret_form": SecretRotateForm(),
    }
    context.update(overrides)
    context["setting_rows"] = context["form"].setting_rows()
    return context


@workspace_view(Perm.MANAGE_STORES)
def store_edit(request: WorkspaceRequest, store_id: int) -> HttpResponse:
    """Change a store's name, currency and connector settings; pause or disconnect it."""
    store = _store(request, store_id)
    loaded = _load(store.platform)
    if request.method != "POST":
        return render(request, "commerce/store_edit.html", _edit_context(request, store, loaded))
    form = StoreSetupForm(request.POST, guide=loaded.guide, store=store)
    if form.is_valid():
        try:
            store_update(store=store, actor=request.user, **form.store_values())
        except StoreError as error:
            _form_errors(form, error)
            store.refresh_from_db()
        else:
            messages.success(request, _("Settings of %(name)s saved.") % {"name": store.name})
            return HttpResponseRedirect(_url("store_edit", request, store.pk))
    return render(
        request,
        "commerce/store_edit.html",
        _edit_context(request, store, loaded, form=form),
        status=400,
    )


@workspace_view(Perm.MANAGE_STORES)
@require_POST
def store_secret_rotate(request: WorkspaceRequest, store_id: int) -> HttpResponse:
    """Replace the webhook secret: one typed in, or a generated one shown this once."""
    store = _store(request, store_id)
    if store.platform == Platform.FILE:
        messages.error(request, _("File-import stores do not receive webhooks."))
        return HttpResponseRedirect(_url("store_edit", request, store.pk))
    loaded = _load(store.platform)
    form = SecretRotateForm(request.POST)
    if not form.is_valid():
        return render(
            request,
            "commerce/store_edit.html",
            _edit_context(request, store, loaded, secret_form=form),
            status=400,
        )
    generated = ""
    if form.cleaned_data["generate"]:
        generated = secrets.token_urlsafe(GENERATED_SECRET_BYTES)
    store_update(
        store=store, actor=request.user, webhook_secret=generated or form.cleaned_data["secret"]
    )
    if not generated:
        messages.success(request, _("Webhook secret replaced."))
        return HttpResponseRedirect(_url("store_edit", request, store.pk))
    response = render(
        request,
        "commerce/store_edit.html",
        _edit_context(request, store, loaded, new_secret=generated),
    )
    # The secret is in this page only: keep it out of every cache.
    response["Cache-Control"] = "no-store"
    return response


@workspace_view(Perm.MANAGE_STORES)
@require_POST
def store_status(request: WorkspaceRequest, store_id: int) -> HttpResponse:
    """Pause, resume, disconnect or reconnect a store. Its data always stays."""
    store = _store(request, store_id)
    form = StoreStatusForm(request.POST)
    back = _url("store_edit", request, store.pk)
    if not form.is_valid():
        messages.error(request, _("Choose pause, resume, disconnect or reconnect."))
        return _back(request, back)
    action = form.cleaned_data["action"]
    store_update(store=store, actor=request.user, status=STATUS_ACTIONS[action])
    text = {
        "pause": _(
            "%(name)s is paused: deliveries are still stored, but no syncs run until you resume it."
        ),
        "resume": _("%(name)s is active again."),
        "disconnect": _(
            "%(name)s is disconnected: its webhooks are refused from now on. Its orders"
            " and customers stay."
        ),
        "reconnect": _("%(name)s is connected again."),
    }[action]
    messages.success(request, text % {"name": store.name})
    return _back(request, back)


# --------------------------------------------------------------------------- member orders


@dataclass(frozen=True)
class LineRow:
    title: str
    sku: str
    quantity: int
    unit_price: str
    net: str


@dataclass(frozen=True)
class OrderRow:
    order: Order
    store_name: str
    status_label: str
    total: str
    refunded: str
    lines: list[LineRow]


@dataclass(frozen=True)
class ProductRow:
    title: str
    url: str
    first_bought_at: dt.datetime
    fulfilled: bool


@dataclass(frozen=True)
class SummaryView:
    summary: MemberSummary
    net_spend: str
    average_order: str
    refunded: str


def _order_rows(orders: list[Order], language: str) -> list[OrderRow]:
    rows = []
    for order in orders:
        lines = [
            LineRow(
                title=(line.product.title_in(language) if line.product else "")
                or line.title
                or line.sku,
                sku=line.sku,
                quantity=line.quantity,
                unit_price=format_money(line.unit_price_minor, order.currency),
                net=format_money(order_line_net_merchandise(line), order.currency),
            )
            for line in order.lines.all()
        ]
        rows.append(
            OrderRow(
                order=order,
                store_name=order.store.name,
                status_label=order.get_status_display(),
                total=format_money(order.total_minor, order.currency),
                refunded=format_money(order.refunded_minor, order.currency)
                if order.refunded_minor
                else "",
                lines=lines,
            )
        )
    return rows


def _product_rows(bought: list[BoughtProduct], language: str) -> list[ProductRow]:
    return [
        ProductRow(
            title=item.product.title_in(language),
            # Addresses come from the store's payloads: only web links become links.
            url=item.product.url if item.product.url.startswith(("https://", "http://")) else "",
            first_bought_at=item.first_bought_at,
            fulfilled=item.fulfilled,
        )
        for item in bought
    ]


def _member(request: WorkspaceRequest, member_id: int) -> Member:
    try:
        member = member_get(workspace=request.workspace, member_id=member_id)
    except Member.DoesNotExist:
        raise Http404(_("No such member.")) from None
    member.workspace = request.workspace
    return member


@workspace_view(Perm.VIEW_MEMBERS)
def member_orders_view(request: WorkspaceRequest, member_id: int) -> HttpResponse:
    """The orders panel of a member profile: summary, bought products, orders (paged).

    htmx gets the panel alone (the profile loads it); a plain request a page around it.
    """
    member = _member(request, member_id)
    language = get_language() or ""
    summary = member_summary(member=member)
    page = member_orders(member=member, page=request.GET.get("page"))
    context: dict[str, Any] = {
        "member": member,
        "summary": SummaryView(
            summary=summary,
            net_spend=format_money(summary.net_spend_minor, summary.currency),
            average_order=format_money(summary.average_order_minor, summary.currency),
            refunded=format_money(summary.refunded_minor, summary.currency),
        )
        if summary is not None
        else None,
        "products": _product_rows(member_bought_products(member=member), language),
        "page": page,
        "orders": _order_rows(list(page.object_list), language),
        "panel_url": _url("member_orders", request, member.pk),
    }
    template = "commerce/_orders_panel.html" if _is_htmx(request) else "commerce/member_orders.html"
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response
