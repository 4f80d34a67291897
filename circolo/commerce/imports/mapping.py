"""The fields each kind of import fills, and which file column holds which.

A mapping is {field name: column name}. It is suggested from the header: each field knows
the names spreadsheets and shops give its column in English, Italian and Spanish, and the
column names of Shopify's CSV exports. Options say how cells are written: the decimal
separator, the order of day and month in dates, and the time zone of times without one.
"""

from __future__ import annotations

import re
import unicodedata
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from circolo.commerce.imports.reading import RawRow

CUSTOMERS, PRODUCTS, ORDERS = "customers", "products", "orders"
KINDS = (CUSTOMERS, PRODUCTS, ORDERS)

DECIMAL_POINT, DECIMAL_COMMA = ".", ","
DATE_ORDERS = ("ymd", "dmy", "mdy")


@dataclass(frozen=True)
class Target:
    """A field an import fills: its key, label, whether a column must be chosen, and the
    column names it is known by (compared without case, accents or punctuation)."""

    name: str
    label: str | Promise
    required: bool = False
    aliases: tuple[str, ...] = ()
    help: str | Promise = ""


_L = gettext_lazy

_CUSTOMER_TARGETS = (
    Target("customer_id", _L("Customer id"), aliases=(
        "customer id", "customer_id", "id", "client id", "id cliente", "codice cliente",
        "id del cliente", "cliente id", "numero cliente"),
        help=_L("The shop's own id of the customer.")),
    Target("email", _L("Email"), aliases=(
        "email", "e-mail", "email address", "customer email", "indirizzo email",
        "posta elettronica", "correo", "correo electronico", "email cliente")),
    Target("phone", _L("Phone"), aliases=(
        "phone", "phone number", "default address phone", "telephone", "telefono", "cellulare",
        "numero di telefono", "movil", "celular")),
    Target("first_name", _L("First name"), aliases=(
        "first name", "first_name", "firstname", "given name", "nome", "nombre")),
    Target("last_name", _L("Last name"), aliases=(
        "last name", "last_name", "lastname", "surname", "family name", "cognome", "apellido",
        "apellidos")),
    Target("name", _L("Full name"), aliases=(
        "name", "full name", "customer name", "nome completo", "nominativo", "nombre completo",
        "cliente"), help=_L("Used when there are no separate first and last names.")),
    Target("city", _L("City"), aliases=(
        "city", "default address city", "town", "citta", "comune", "localita", "ciudad",
        "localidad", "poblacion")),
    Target("country", _L("Country code"), aliases=(
        "country code", "country", "default address country code", "codice paese", "paese",
        "nazione", "codigo de pais", "pais"),
        help=_L("Two letters, such as IT or ES.")),
    Target("languages", _L("Languages"), aliases=(
        "languages", "language", "locale", "lingua", "lingue", "idioma", "idiomas")),
    Target("accepts_marketing", _L("Accepts marketing"), aliases=(
        "accepts marketing", "accepts email marketing", "newsletter", "consenso marketing",
        "acepta marketing")),
    Target("created_at", _L("Customer since"), aliases=(
        "created at", "created_at", "date created", "registered", "data registrazione",
        "data creazione", "fecha de registro", "fecha de alta")),
    Target("updated_at", _L("Updated at"), aliases=(
        "updated at", "updated_at", "data modifica", "ultima modifica", "fecha de actualizacion")),
)  # fmt: skip

_PRODUCT_TARGETS = (
    Target("product_id", _L("Product id"), required=True, aliases=(
        "product id", "product_id", "handle", "id", "id prodotto", "codice prodotto",
        "id producto", "codigo de producto"),
        help=_L("Rows with the same product id are one product with several variants.")),
    Target("title", _L("Title"), aliases=(
        "title", "name", "product name", "titolo", "nome", "nome prodotto", "titulo", "nombre",
        "nombre del producto"), help=_L("Without a title the product id is shown.")),
    Target("status", _L("Status"), aliases=(
        "status", "stato", "estado"),
        help=_L("active, draft or archived (also in Italian or Spanish).")),
    Target("url", _L("Address (URL)"), aliases=(
        "url", "link", "product url", "permalink", "indirizzo", "enlace")),
    Target("image_url", _L("Image address"), aliases=(
        "image src", "image url", "image", "immagine", "url immagine", "imagen",
        "url de imagen")),
    Target("updated_at", _L("Updated at"), aliases=(
        "updated at", "updated_at", "last modified", "data modifica", "ultima modifica",
        "fecha de actualizacion")),
    Target("variant_id", _L("Variant id"), aliases=(
        "variant id", "variant_id", "id variante", "id de variante"),
        help=_L("Without it a variant is known by its SKU.")),
    Target("sku", _L("SKU"), aliases=(
        "variant sku", "sku", "codice articolo", "codice", "referencia", "codigo")),
    Target("variant_title", _L("Variant title"), aliases=(
        "variant title", "option1 value", "variante", "nome variante", "variante nombre")),
    Target("price", _L("Price"), aliases=(
        "variant price", "price", "prezzo", "precio"),
        help=_L("In the store's currency.")),
)  # fmt: skip

_ORDER_TARGETS = (
    Target("order_id", _L("Order id"), required=True, aliases=(
        "order id", "order_id", "id", "id ordine", "codice ordine", "id pedido", "id del pedido",
        "pedido id"), help=_L("Rows with the same order id are the lines of one order.")),
    Target("number", _L("Order number"), aliases=(
        "name", "order number", "number", "order", "numero ordine", "n ordine", "ordine",
        "numero de pedido", "pedido")),
    Target("placed_at", _L("Placed at"), required=True, aliases=(
        "created at", "created_at", "order date", "date", "placed at", "data ordine", "data",
        "fecha", "fecha del pedido", "fecha de pedido")),
    Target("updated_at", _L("Updated at"), aliases=(
        "updated at", "updated_at", "last modified", "data modifica", "ultima modifica",
        "fecha de actualizacion"),
        help=_L("A newer version of an order replaces an older one. Default: placed at.")),
    Target("status", _L("Status"), aliases=(
        "financial status", "status", "order status", "payment status", "stato", "stato ordine",
        "stato pagamento", "estado", "estado del pedido", "estado del pago"),
        help=_L("pending, paid, fulfilled or cancelled (also Shopify, WooCommerce, Italian "
                "and Spanish words). Default: paid.")),
    Target("fulfillment_status", _L("Fulfilment status"), aliases=(
        "fulfillment status", "fulfilment status", "stato spedizione", "stato evasione",
        "estado de envio")),
    Target("paid_at", _L("Paid at"), aliases=(
        "paid at", "paid_at", "payment date", "data pagamento", "fecha de pago")),
    Target("fulfilled_at", _L("Fulfilled at"), aliases=(
        "fulfilled at", "fulfilled_at", "shipped at", "data spedizione", "data evasione",
        "fecha de envio")),
    Target("cancelled_at", _L("Cancelled at"), aliases=(
        "cancelled at", "canceled at", "cancelled_at", "data annullamento", "annullato il",
        "fecha de cancelacion")),
    Target("currency", _L("Currency"), aliases=(
        "currency", "valuta", "moneda", "divisa"),
        help=_L("Three letters, such as EUR. Default: the store's currency.")),
    Target("customer_id", _L("Customer id"), aliases=(
        "customer id", "customer_id", "id cliente", "codice cliente", "id del cliente",
        "cliente id")),
    Target("email", _L("Email"), aliases=(
        "email", "e-mail", "customer email", "billing email", "email cliente", "correo",
        "correo electronico")),
    Target("phone", _L("Phone"), aliases=(
        "phone", "billing phone", "shipping phone", "telefono", "cellulare", "movil")),
    Target("first_name", _L("First name"), aliases=(
        "first name", "billing first name", "nome", "nombre")),
    Target("last_name", _L("Last name"), aliases=(
        "last name", "billing last name", "cognome", "apellido", "apellidos")),
    Target("customer_name", _L("Customer name"), aliases=(
        "billing name", "customer name", "customer", "nome cliente", "cliente",
        "nombre del cliente", "shipping name")),
    Target("city", _L("City"), aliases=(
        "billing city", "city", "shipping city", "citta", "comune", "ciudad")),
    Target("country", _L("Country code"), aliases=(
        "billing country", "country", "country code", "shipping country", "paese", "nazione",
        "pais")),
    Target("subtotal", _L("Subtotal"), aliases=(
        "subtotal", "subtotale", "imponibile")),
    Target("discount", _L("Order discounts"), aliases=(
        "discount amount", "discount", "discounts", "sconto", "sconti", "descuento",
        "descuentos")),
    Target("shipping", _L("Shipping"), aliases=(
        "shipping", "shipping cost", "spedizione", "costo spedizione", "spese di spedizione",
        "envio", "gastos de envio")),
    Target("tax", _L("Tax"), aliases=(
        "taxes", "tax", "tasse", "iva", "imposte", "impuestos")),
    Target("total", _L("Total"), required=True, aliases=(
        "total", "totale", "order total", "importo totale", "importe total")),
    Target("discount_codes", _L("Discount codes"), aliases=(
        "discount code", "discount codes", "coupon", "coupons", "codice sconto", "codici sconto",
        "codigo de descuento", "cupon")),
    Target("line_id", _L("Line id"), aliases=(
        "line id", "line_id", "lineitem id", "line item id", "id riga", "id linea",
        "id de linea"),
        help=_L("Without it a line is known by its order and SKU (or product, or title).")),
    Target("sku", _L("SKU"), aliases=(
        "lineitem sku", "sku", "codice articolo", "codice", "referencia", "codigo")),
    Target("product_id", _L("Product id"), aliases=(
        "product id", "product_id", "lineitem product id", "id prodotto", "id producto")),
    Target("variant_id", _L("Variant id"), aliases=(
        "variant id", "variant_id", "lineitem variant id", "id variante")),
    Target("title", _L("Item title"), aliases=(
        "lineitem name", "item name", "product name", "product", "title", "item",
        "nome prodotto", "prodotto", "articolo", "descrizione", "producto",
        "nombre del producto", "articulo")),
    Target("quantity", _L("Quantity"), required=True, aliases=(
        "lineitem quantity", "quantity", "qty", "quantita", "qta", "cantidad")),
    Target("unit_price", _L("Unit price"), required=True, aliases=(
        "lineitem price", "unit price", "price", "item price", "prezzo", "prezzo unitario",
        "precio", "precio unitario")),
    Target("line_discount", _L("Line discount"), aliases=(
        "lineitem discount", "line discount", "item discount", "sconto riga",
        "descuento de linea")),
    Target("refund_id", _L("Refund id"), aliases=(
        "refund id", "refund_id", "id rimborso", "id reembolso"),
        help=_L("Default: one refund per order.")),
    Target("refunded_at", _L("Refunded at"), aliases=(
        "refunded at", "refund date", "data rimborso", "fecha de reembolso"),
        help=_L("Default: the order's updated at.")),
    Target("refund_amount", _L("Refunded amount"), aliases=(
        "refunded amount", "refund amount", "importo rimborsato", "rimborso",
        "importe reembolsado", "reembolso"),
        help=_L("The refund's total. Default: the sum of its lines.")),
    Target("refund_quantity", _L("Refunded quantity of the line"), aliases=(
        "lineitem refunded quantity", "refunded quantity", "quantita rimborsata",
        "cantidad reembolsada")),
    Target("refund_line_amount", _L("Refunded amount of the line"), aliases=(
        "lineitem refunded amount", "refunded line amount", "importo rimborsato riga",
        "importe reembolsado de linea")),
    Target("refund_reason", _L("Refund reason"), aliases=(
        "refund reason", "motivo rimborso", "motivo del reembolso")),
)  # fmt: skip

TARGETS: dict[str, tuple[Target, ...]] = {
    CUSTOMERS: _CUSTOMER_TARGETS,
    PRODUCTS: _PRODUCT_TARGETS,
    ORDERS: _ORDER_TARGETS,
}
# Fields holding money, dates and numbers: their sample cells suggest the options.
MONEY_FIELDS = frozenset(
    {"price", "subtotal", "discount", "shipping", "tax", "total", "unit_price",
     "line_discount", "refund_amount", "refund_line_amount"}
)  # fmt: skip
DATE_FIELDS = frozenset(
    {"created_at", "updated_at", "placed_at", "paid_at", "fulfilled_at", "cancelled_at",
     "refunded_at"}
)  # fmt: skip


class MappingError(ValueError):
    """A mapping that cannot be used; `errors` maps each field (or option) to a message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def targets(kind: str) -> tuple[Target, ...]:
    return TARGETS[kind]


def column_key(name: str) -> str:
    """A column name compared loosely: lower case, no accents, punctuation as spaces."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(char for char in text if not unicodedata.combining(char)).lower()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def mapping_suggest(kind: str, columns: Sequence[str]) -> dict[str, str]:
    """{field: column} for every field whose name or alias matches a column; each column
    serves one field, and a field's earlier aliases win over later ones."""
    by_key: dict[str, str] = {}
    for column in columns:
        by_key.setdefault(column_key(column), column)
    taken: set[str] = set()
    suggestion: dict[str, str] = {}
    # Exact field names first (a JSONL export of Circolo's own fields), then aliases by rank.
    for target in targets(kind):
        exact = by_key.get(column_key(target.name))
        if exact is not None and exact not in taken and target.name not in suggestion:
            suggestion[target.name] = exact
            taken.add(exact)
    for rank in range(max(len(t.aliases) for t in targets(kind))):
        for target in targets(kind):
            if target.name in suggestion or rank >= len(target.aliases):
                continue
            found = by_key.get(column_key(target.aliases[rank]))
            if found is not None and found not in taken:
                suggestion[target.name] = found
                taken.add(found)
    return {t.name: suggestion[t.name] for t in targets(kind) if t.name in suggestion}


_DAY_FIRST = re.compile(r"^\s*(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2,4})")
_COMMA_DECIMAL = re.compile(r"\d,\d{1,2}\s*\D*$")
_POINT_DECIMAL = re.compile(r"\d\.\d{1,2}\s*\D*$")


def options_suggest(
    mapping: dict[str, str], sample: Sequence[RawRow], *, time_zone: str
) -> dict[str, str]:
    """How the file writes numbers and dates, guessed from sample cells of mapped columns."""
    money = [mapping[name] for name in MONEY_FIELDS if name in mapping]
    dates = [mapping[name] for name in DATE_FIELDS if name in mapping]
    commas = points = 0
    day_first = month_first = 0
    for row in sample:
        for column in money:
            cell = row.values.get(column, "")
            if _COMMA_DECIMAL.search(cell):
                commas += 1
            elif _POINT_DECIMAL.search(cell):
                points += 1
        for column in dates:
            match = _DAY_FIRST.match(row.values.get(column, ""))
            if match:
                first, second = int(match.group(1)), int(match.group(2))
                day_first += first > 12
                month_first += second > 12
    return {
        "decimal": DECIMAL_COMMA if commas > points else DECIMAL_POINT,
        "dates": "mdy" if month_first > day_first else "dmy",
        "time_zone": time_zone,
    }


def mapping_clean(
    kind: str, columns: Sequence[str], fields: dict[str, Any], options: dict[str, Any]
) -> tuple[dict[str, str], dict[str, str]]:
    """The mapping and options as stored, or MappingError naming each wrong field: required
    fields need a column, a column serves one field, options take their listed values."""
    errors: dict[str, str] = {}
    known = set(columns)
    clean: dict[str, str] = {}
    used: dict[str, str] = {}
    for target in targets(kind):
        column = str(fields.get(target.name) or "")
        if not column:
            if target.required:
                errors[target.name] = _("Choose the column for “%(field)s”: it is required.") % {
                    "field": target.label
                }
            continue
        if column not in known:
            errors[target.name] = _("The file has no column “%(column)s”.") % {"column": column}
            continue
        if column in used:
            errors[target.name] = _("The column “%(column)s” is already used for %(field)s.") % {
                "column": column,
                "field": next(t.label for t in targets(kind) if t.name == used[column]),
            }
            continue
        used[column] = target.name
        clean[target.name] = column
    if kind == CUSTOMERS and not {"customer_id", "email", "phone"} & set(clean):
        errors["customer_id"] = _("Choose a column for the customer id, the email or the phone.")
    decimal = str(options.get("decimal") or DECIMAL_POINT)
    if decimal not in (DECIMAL_POINT, DECIMAL_COMMA):
        errors["decimal"] = _("Choose a point or a comma as the decimal separator.")
    dates = str(options.get("dates") or "dmy")
    if dates not in DATE_ORDERS:
        errors["dates"] = _("Choose how dates are written.")
    time_zone = str(options.get("time_zone") or "UTC")
    try:
        zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        errors["time_zone"] = _("“%(zone)s” is not a time zone such as Europe/Rome.") % {
            "zone": time_zone
        }
    if errors:
        raise MappingError(errors)
    return clean, {"decimal": decimal, "dates": dates, "time_zone": time_zone}
