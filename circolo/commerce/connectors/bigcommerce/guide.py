"""What the store setup page tells a user connecting a BigCommerce store."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from circolo.commerce.connectors.base import SetupField, SetupGuide

# Topics to subscribe: every one of them makes Circolo read the resource again from the API.
TOPICS = (
    "store/customer/created",
    "store/customer/updated",
    "store/product/created",
    "store/product/updated",
    "store/sku/created",
    "store/sku/updated",
    "store/order/created",
    "store/order/updated",
    "store/order/statusUpdated",
    "store/order/refund/created",
)

STEPS = (
    _(
        "In your BigCommerce control panel open Settings › API › Store-level API accounts and "
        "create an API account of type V2/V3 API token, named Circolo."
    ),
    _(
        "Give it read-only access to Customers, Products, Orders and Information & settings. "
        "Circolo never changes anything in your store."
    ),
    _(
        "Save the account. BigCommerce shows its client ID, client secret, access token and "
        "API path once (it also downloads them as a text file): keep that window open."
    ),
    _(
        "Fill in the form below with the API path, the access token and the client secret. "
        "BigCommerce signs every webhook with the client secret. Circolo keeps both secrets "
        "encrypted."
    ),
    _(
        "BigCommerce creates webhooks only through its API. For each topic listed on this "
        "page, send a POST request to the API path followed by hooks (…/v3/hooks) with the "
        "header X-Auth-Token set to the access token and the JSON body "
        '{"scope": "<topic>", "destination": "<webhook address>", "is_active": true}, where '
        "the webhook address is the one shown on this page. Your developer or any HTTP tool "
        "(curl, Postman) can do it."
    ),
    _(
        "Optionally add a header of your own to each webhook, for example "
        '"headers": {"X-Circolo-Key": "<a long random value>"}, and enter its name and value '
        "below: Circolo then refuses deliveries that do not carry it."
    ),
    _(
        "Send a test delivery from this page, then start the import of your existing "
        "customers, products and orders."
    ),
)

FIELDS = (
    SetupField(
        name="api_url",
        label=_("API path"),
        help_text=_(
            "Shown with the API account, such as https://api.bigcommerce.com/stores/abc123/v3/."
        ),
        target="api_url",
    ),
    SetupField(
        name="external_id",
        label=_("Store hash"),
        help_text=_(
            "The code after /stores/ in the API path. Leave it empty to take it from there."
        ),
        required=False,
        target="external_id",
    ),
    SetupField(
        name="access_token",
        label=_("Access token"),
        help_text=_("Used to read customers, products, orders and refunds."),
        secret=True,
    ),
    SetupField(
        name="webhook_secret",
        label=_("Client secret"),
        help_text=_("The API account's client secret: BigCommerce signs its webhooks with it."),
        secret=True,
        target="webhook_secret",
    ),
    SetupField(
        name="hook_header_name",
        label=_("Custom webhook header"),
        help_text=_("Optional: the name of the header you added to the webhooks."),
        required=False,
    ),
    SetupField(
        name="hook_header_value",
        label=_("Custom webhook header value"),
        help_text=_("Optional: the value of that header."),
        secret=True,
        required=False,
    ),
    SetupField(
        name="storefront_url",
        label=_("Storefront address"),
        help_text=_(
            "Optional: your shop's address, such as https://shop.example.com, to link products."
        ),
        required=False,
    ),
)


def setup_guide() -> SetupGuide:
    return SetupGuide(steps=STEPS, fields=FIELDS, topics=TOPICS)
