"""What the store setup page tells a user connecting a Shopify shop."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from circolo.commerce.connectors.base import SetupField, SetupGuide

# Topics to subscribe: the ones parsed, and the three privacy topics every app must handle.
TOPICS = (
    "customers/create",
    "customers/update",
    "products/create",
    "products/update",
    "orders/create",
    "orders/paid",
    "orders/updated",
    "orders/fulfilled",
    "orders/cancelled",
    "refunds/create",
    "customers/data_request",
    "customers/redact",
    "shop/redact",
)

STEPS = (
    _(
        "In your Shopify admin open Settings › Apps and sales channels › Develop apps and "
        "create an app for Circolo (or use the app you made in the Shopify Dev Dashboard)."
    ),
    _(
        "Under Configuration › Admin API integration grant the scopes read_customers, "
        "read_products and read_orders. Add read_all_orders if Circolo should also import "
        "orders older than 60 days."
    ),
    _(
        "Install the app in your shop. Under API credentials reveal the Admin API access "
        "token (Shopify shows it only once) and copy the API secret key, also called the "
        "client secret."
    ),
    _(
        "Fill in the form below: your shop's myshopify.com domain, the access token and the "
        "client secret. Circolo keeps both secrets encrypted."
    ),
    _(
        "Subscribe the app's webhooks to the topics listed below, in JSON format with API "
        "version 2024-10, sending them to the webhook address shown on this page. The three "
        "privacy topics (customers/data_request, customers/redact, shop/redact) are set in "
        "the app's compliance webhooks."
    ),
    _(
        "If you create the webhooks under Settings › Notifications › Webhooks instead, Shopify "
        "signs them with the key shown under that list: paste that key as the webhook secret."
    ),
    _(
        "Send a test delivery from this page, then start the import of your existing "
        "customers, products and orders."
    ),
)

FIELDS = (
    SetupField(
        name="external_id",
        label=_("Shop domain"),
        help_text=_("Your shop's permanent address, such as bottega-verde.myshopify.com."),
        target="external_id",
    ),
    SetupField(
        name="api_url",
        label=_("Shop address"),
        help_text=_("https:// followed by the shop domain. Leave it empty to use the shop domain."),
        required=False,
        target="api_url",
    ),
    SetupField(
        name="access_token",
        label=_("Admin API access token"),
        help_text=_("Starts with shpat_. Used to import and reconcile your shop's data."),
        secret=True,
        target="credentials",
    ),
    SetupField(
        name="webhook_secret",
        label=_("API secret key (client secret)"),
        help_text=_("Shopify signs every webhook with it; unsigned deliveries are refused."),
        secret=True,
        target="webhook_secret",
    ),
)


def setup_guide() -> SetupGuide:
    return SetupGuide(steps=STEPS, fields=FIELDS, topics=TOPICS)
