"""What the store setup page tells a user connecting a WooCommerce shop.

Keys are made under WooCommerce > Settings > Advanced > REST API and webhooks under
WooCommerce > Settings > Advanced > Webhooks ("Getting started with the REST API",
https://woocommerce.com/document/woocommerce-rest-api/; "Webhooks",
https://woocommerce.com/document/webhooks/).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from circolo.commerce.connectors.base import SetupField, SetupGuide

# One webhook per topic. Refunds arrive as order.updated (WooCommerce has no refund topic).
TOPICS = (
    "customer.created",
    "customer.updated",
    "product.created",
    "product.updated",
    "order.created",
    "order.updated",
)

STEPS = (
    _(
        "In your WordPress admin open WooCommerce › Settings › Advanced › REST API and choose "
        "Add key. Describe it as Circolo, pick an administrator or shop manager as the user, "
        "give it Read permissions and generate it."
    ),
    _(
        "Copy the consumer key (it starts with ck_) and the consumer secret (cs_). WooCommerce "
        "shows the secret only once."
    ),
    _(
        "Fill in the form below: your site's address as visitors see it (it must start with "
        "https://, WooCommerce refuses keys sent over plain http), the consumer key and the "
        "consumer secret. Circolo keeps them encrypted."
    ),
    _(
        "Choose a long random secret for the webhooks and paste it in the webhook secret field "
        "below. Every webhook you create next uses this same secret."
    ),
    _(
        "Open WooCommerce › Settings › Advanced › Webhooks and add one webhook for each topic "
        "listed below: status Active, the topic, the webhook address shown on this page as "
        "delivery URL, the secret from the previous step, and API version WP REST API "
        "Integration v3."
    ),
    _(
        "When you save a webhook WooCommerce sends a ping to the address; if it reports an "
        "error, check that the address was copied whole."
    ),
    _(
        "Send a test delivery from this page, then start the import of your existing "
        "customers, products and orders."
    ),
)

FIELDS = (
    SetupField(
        name="api_url",
        label=_("Site address"),
        help_text=_("The address of your WordPress site, such as https://shop.example.com."),
        target="api_url",
    ),
    SetupField(
        name="consumer_key",
        label=_("Consumer key"),
        help_text=_("Starts with ck_. Used to import and reconcile your shop's data."),
        secret=True,
        target="credentials",
    ),
    SetupField(
        name="consumer_secret",
        label=_("Consumer secret"),
        help_text=_("Starts with cs_. Shown by WooCommerce once, when the key is made."),
        secret=True,
        target="credentials",
    ),
    SetupField(
        name="webhook_secret",
        label=_("Webhook secret"),
        help_text=_(
            "The secret of your WooCommerce webhooks: it signs every delivery, and unsigned "
            "deliveries are refused."
        ),
        secret=True,
        target="webhook_secret",
    ),
)


def setup_guide() -> SetupGuide:
    return SetupGuide(steps=STEPS, fields=FIELDS, topics=TOPICS)
