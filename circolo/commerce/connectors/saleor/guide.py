"""What the store setup page tells a user connecting a Saleor shop."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from circolo.commerce.connectors.base import SetupField, SetupGuide
from circolo.commerce.connectors.saleor.documents import (
    CUSTOMER_EVENTS,
    CUSTOMER_SUBSCRIPTION,
    ORDER_EVENTS,
    ORDER_SUBSCRIPTION,
    PRODUCT_EVENTS,
    PRODUCT_SUBSCRIPTION,
)

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

# Every event Circolo reads, by its Saleor-Event name (the dashboard shows them upper-case).
TOPICS = CUSTOMER_EVENTS + PRODUCT_EVENTS + ORDER_EVENTS


def _webhook_step(title: StrOrPromise, events: tuple[str, ...], document: str) -> StrOrPromise:
    return format_lazy(
        "{title}\n{events_label} {events}\n{query_label}\n\n{document}",
        title=title,
        events_label=_("Events:"),
        events=", ".join(event.upper() for event in events),
        query_label=_("Subscription query (paste it into the webhook's payload field):"),
        document=document.strip(),
    )


STEPS = (
    _(
        "In the Saleor Dashboard open Extensions (Apps in older versions), choose Add "
        "extension › Provide details manually and create an app named Circolo. Circolo needs "
        "Saleor 3.20 or newer."
    ),
    _(
        "Give the app the permissions Manage customers (MANAGE_USERS), Manage products "
        "(MANAGE_PRODUCTS) and Manage orders (MANAGE_ORDERS). Then create a token for the app "
        "and copy it: Saleor shows it only once."
    ),
    _(
        "Fill in the form below: the address of your shop's GraphQL API, such as "
        "https://shop.example/graphql/, and the app token. Circolo keeps the token encrypted "
        "and uses it to import and reconcile your customers, products and orders."
    ),
    _(
        "In the app create three webhooks, one for each subscription query below, all sending "
        "to the webhook address shown on this page. Leave their secret key empty: Saleor then "
        "signs every delivery with its own private key, and Circolo checks it against the "
        "public keys your shop publishes at /.well-known/jwks.json."
    ),
    _webhook_step(_("Webhook 1: customers."), CUSTOMER_EVENTS, CUSTOMER_SUBSCRIPTION),
    _webhook_step(_("Webhook 2: products."), PRODUCT_EVENTS, PRODUCT_SUBSCRIPTION),
    _webhook_step(
        _("Webhook 3: orders, payments, fulfilments and refunds."), ORDER_EVENTS, ORDER_SUBSCRIPTION
    ),
    _(
        "Saleor has no landing page or referral fields. If your storefront records them, save "
        "them on the order as the metadata keys landing_site and referring_code (or a ref "
        "parameter in the landing address): Circolo reads them from there."
    ),
    _(
        "Start the import of your existing customers, products and orders. Only Saleor can "
        "sign a delivery with its key, so to see one arrive, save a product in the dashboard "
        "and watch the deliveries list on this page."
    ),
)

FIELDS = (
    SetupField(
        name="api_url",
        label=_("GraphQL API address"),
        help_text=_(
            "The address of your shop's API, usually ending in /graphql/. Circolo fetches the "
            "shop's public keys from the same host."
        ),
        target="api_url",
    ),
    SetupField(
        name="token",
        label=_("App token"),
        help_text=_("The token of the Circolo app in your Saleor Dashboard."),
        secret=True,
        target="credentials",
    ),
    SetupField(
        name="external_id",
        label=_("Shop domain"),
        help_text=_(
            "Only if Saleor's public address differs from the API's host: the domain Saleor "
            "sends as Saleor-Domain, such as shop.example. Leave it empty otherwise."
        ),
        required=False,
        target="external_id",
    ),
    SetupField(
        name="webhook_secret",
        label=_("Webhook secret key (deprecated)"),
        help_text=_(
            "Leave it empty. Only if your webhooks were created with a secret key does Saleor "
            "sign with that key instead of its own: then paste the same key here."
        ),
        secret=True,
        required=False,
        target="webhook_secret",
    ),
)


def setup_guide() -> SetupGuide:
    return SetupGuide(steps=STEPS, fields=FIELDS, topics=TOPICS)
