"""One key per mailbox: email addresses folded the way their providers deliver them.

Referral fraud checks compare the friend's address with the advocate's: "Anna.Rossi+promo@
googlemail.com" reaches the same inbox as "annarossi@gmail.com", so both have one key. Only
what a provider documents is folded: case everywhere, "+tag" where the provider delivers
tagged mail to the plain address, dots in Gmail addresses, and googlemail.com as gmail.com.
"""

from __future__ import annotations

GMAIL = "gmail.com"
# Domains that are Gmail under another name.
GMAIL_ALIASES = frozenset({"gmail.com", "googlemail.com"})
# Providers that deliver "user+anything@domain" to "user@domain" (documented subaddressing).
PLUS_PROVIDERS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        # Microsoft consumer mail.
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        # Apple iCloud.
        "icloud.com",
        "me.com",
        "mac.com",
        # Proton.
        "protonmail.com",
        "protonmail.ch",
        "proton.me",
        "pm.me",
        # Fastmail.
        "fastmail.com",
        "fastmail.fm",
        # Yandex and Zoho.
        "yandex.com",
        "yandex.ru",
        "ya.ru",
        "zoho.com",
        "zohomail.com",
    }
)


def email_key(email: str) -> str:
    """The mailbox an address reaches, as one comparable string: lower case, the "+tag"
    dropped where the provider ignores it, dots dropped and googlemail.com read as gmail.com
    for Gmail. Text without an "@" is only trimmed and lower-cased."""
    value = email.strip().lower()
    local, at, domain = value.rpartition("@")
    if not at or not local:
        return value
    domain = domain.rstrip(".")
    if domain in PLUS_PROVIDERS:
        plain = local.split("+", 1)[0]
        # "+tag@" alone is not a mailbox: keep the address as it is.
        local = plain or local
    if domain in GMAIL_ALIASES:
        domain = GMAIL
        local = local.replace(".", "") or local
    return f"{local}@{domain}"
