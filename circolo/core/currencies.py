"""Currencies: ISO 4217 minor-unit exponents, shared by every app that handles money."""

from __future__ import annotations

# Currencies whose minor unit is not 1/100 (ISO 4217); every other code has two decimals.
EXPONENTS: dict[str, int] = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0, "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "CLF": 4, "UYW": 4,
}  # fmt: skip


def exponent(currency: str) -> int:
    """Digits after the decimal point in `currency`'s amounts (2 unless listed)."""
    return EXPONENTS.get(currency.upper(), 2)
