"""The GraphQL documents Circolo needs from a Saleor shop: the webhook subscriptions the user
pastes into the dashboard, and the queries a backfill or reconciliation pages with.

A Saleor webhook carries whatever its subscription query selects ("Webhooks Overview",
https://docs.saleor.io/developer/extending/webhooks/overview: the body is the `event` object,
e.g. {"order": {...}}), so the fragments below are the payload contract: payloads.py reads
exactly these fields, and the backfill queries select the same fragments, so a webhook and a
page of the API give the same records. Field names follow Saleor's schema (API reference,
https://docs.saleor.io/api-reference: Order, OrderLine, OrderGrantedRefund, TransactionItem,
TransactionEvent, Fulfillment, OrderEvent, User, Address, Product, ProductVariant); they
exist in Saleor 3.20 and newer.
"""

from __future__ import annotations

ADDRESS = """
fragment CircoloAddress on Address {
  firstName
  lastName
  companyName
  streetAddress1
  streetAddress2
  city
  cityArea
  postalCode
  country { code }
  countryArea
  phone
}
"""

USER = """
fragment CircoloUser on User {
  id
  email
  firstName
  lastName
  isActive
  languageCode
  dateJoined
  updatedAt
  defaultBillingAddress { ...CircoloAddress }
  defaultShippingAddress { ...CircoloAddress }
}
"""

PRODUCT = """
fragment CircoloProduct on Product {
  id
  name
  slug
  created
  updatedAt
  thumbnail(size: 1024) { url }
  channelListings { isPublished channel { slug currencyCode } }
  variants {
    id
    name
    sku
    channelListings { channel { slug currencyCode } price { amount currency } }
  }
  translationIt: translation(languageCode: IT) { name }
  translationEs: translation(languageCode: ES) { name }
  translationZhHans: translation(languageCode: ZH_HANS) { name }
}
"""

ORDER = """
fragment CircoloOrder on Order {
  id
  number
  created
  updatedAt
  status
  isPaid
  chargeStatus
  userEmail
  languageCodeEnum
  user { id email firstName lastName }
  billingAddress { ...CircoloAddress }
  shippingAddress { ...CircoloAddress }
  voucherCode
  metadata { key value }
  subtotal { net { amount currency } }
  shippingPrice { net { amount currency } }
  total { net { amount currency } gross { amount currency } tax { amount currency } }
  undiscountedTotal { net { amount currency } }
  lines {
    id
    productName
    variantName
    productSku
    productVariantId
    quantity
    voucherCode
    variant { id product { id } }
    unitPrice { net { amount currency } }
    undiscountedUnitPrice { net { amount currency } }
    totalPrice { net { amount currency } }
    undiscountedTotalPrice { net { amount currency } }
  }
  fulfillments { id status created }
  events { id date type amount }
  transactions {
    id
    events { id type createdAt amount { amount currency } }
  }
  grantedRefunds {
    id
    status
    createdAt
    updatedAt
    amount { amount currency }
    lines { quantity orderLine { id } }
    transactionEvents { id }
  }
}
"""

# Saleor event names (the Saleor-Event header) each subscription below listens to.
ORDER_EVENTS = (
    "order_created",
    "order_confirmed",
    "order_updated",
    "order_paid",
    "order_fully_paid",
    "order_fulfilled",
    "order_cancelled",
    "order_expired",
    "order_refunded",
    "order_fully_refunded",
)
CUSTOMER_EVENTS = ("customer_created", "customer_updated")
PRODUCT_EVENTS = ("product_created", "product_updated", "product_deleted")


def _type_name(event: str) -> str:
    """order_fully_paid -> OrderFullyPaid: Saleor's subscription type of an event."""
    return "".join(part.capitalize() for part in event.split("_"))


def _subscription(name: str, events: tuple[str, ...], field: str, fragment: str) -> str:
    cases = "\n".join(
        f"    ... on {_type_name(event)} {{ issuedAt {field} {{ ...{fragment} }} }}"
        for event in events
    )
    return f"subscription {name} {{\n  event {{\n{cases}\n  }}\n}}\n"


ORDER_SUBSCRIPTION = (
    _subscription("CircoloOrders", ORDER_EVENTS, "order", "CircoloOrder") + ORDER + ADDRESS
)
CUSTOMER_SUBSCRIPTION = (
    _subscription("CircoloCustomers", CUSTOMER_EVENTS, "user", "CircoloUser") + USER + ADDRESS
)
PRODUCT_SUBSCRIPTION = (
    _subscription("CircoloProducts", PRODUCT_EVENTS, "product", "CircoloProduct") + PRODUCT
)
# What the setup page shows: one webhook per document, each with its events ticked.
SUBSCRIPTIONS = (
    (CUSTOMER_EVENTS, CUSTOMER_SUBSCRIPTION),
    (PRODUCT_EVENTS, PRODUCT_SUBSCRIPTION),
    (ORDER_EVENTS, ORDER_SUBSCRIPTION),
)


def _page_query(name: str, root: str, filter_type: str, sort: str, fragment: str) -> str:
    return (
        f"query {name}($first: Int!, $after: String, $filter: {filter_type}) {{\n"
        f"  {root}(first: $first, after: $after, filter: $filter, sortBy: {sort}) {{\n"
        "    pageInfo { hasNextPage endCursor }\n"
        f"    edges {{ node {{ ...{fragment} }} }}\n"
        "  }\n"
        "}\n"
    )


# Backfill pages: oldest first by a key that never changes, so records edited during the
# walk do not move between pages; `filter.updatedAt.gte` narrows a reconciliation.
CUSTOMERS_QUERY = (
    _page_query(
        "CircoloCustomerPage",
        "customers",
        "CustomerFilterInput",
        "{field: CREATED_AT, direction: ASC}",
        "CircoloUser",
    )
    + USER
    + ADDRESS
)
PRODUCTS_QUERY = (
    _page_query(
        "CircoloProductPage",
        "products",
        "ProductFilterInput",
        "{field: CREATED_AT, direction: ASC}",
        "CircoloProduct",
    )
    + PRODUCT
)
ORDERS_QUERY = (
    _page_query(
        "CircoloOrderPage",
        "orders",
        "OrderFilterInput",
        "{field: NUMBER, direction: ASC}",
        "CircoloOrder",
    )
    + ORDER
    + ADDRESS
)
QUERIES = {"customers": CUSTOMERS_QUERY, "products": PRODUCTS_QUERY, "orders": ORDERS_QUERY}
