"""Amounts as integer minor units: parse decimal strings exactly, using ISO 4217 exponents."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from circolo.commerce.schema import PayloadError
from circolo.core.currencies import EXPONENTS, exponent

__all__ = ["EXPONENTS", "exponent", "format_money", "from_minor", "to_minor"]


def to_minor(value: object, currency: str, *, field_name: str = "amount") -> int:
    """`value` (a decimal string or number in major units) as integer minor units.

    Half-even rounding past the currency's precision; PayloadError for anything not a number.
    """
    if value is None or value == "":
        return 0
    if isinstance(value, float):
        value = repr(value)
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise PayloadError(field_name, f"“{value}” is not an amount") from None
    if not amount.is_finite():
        raise PayloadError(field_name, f"“{value}” is not an amount")
    scaled = (amount * (Decimal(10) ** exponent(currency))).quantize(
        Decimal(1), rounding=ROUND_HALF_EVEN
    )
    return int(scaled)


def from_minor(amount: int, currency: str) -> Decimal:
    return Decimal(amount).scaleb(-exponent(currency))


def format_money(amount: int, currency: str) -> str:
    """A plain, locale-neutral rendering such as "EUR 12.50"."""
    digits = exponent(currency)
    return f"{currency} {from_minor(amount, currency):,.{digits}f}"
