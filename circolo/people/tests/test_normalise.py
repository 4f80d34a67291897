from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from circolo.people.normalise import (
    IdentityError,
    MemberError,
    clean_country,
    clean_languages,
    name_key,
    normalise_email,
    normalise_identity,
    normalise_phone,
    normalise_tag,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Anna.Rossi@Example.COM ", "anna.rossi@example.com"),
        ("\tli.wei@example.cn\n", "li.wei@example.cn"),
        ("x+tag@sub.example.it", "x+tag@sub.example.it"),
    ],
)
def test_email_is_trimmed_and_lower_case(raw: str, expected: str) -> None:
    assert normalise_email(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", "anna", "anna@", "@example.com", "a b@example.com"])
def test_bad_email_raises_identity_error_naming_the_field(raw: str) -> None:
    with pytest.raises(IdentityError) as caught:
        normalise_email(raw)
    assert caught.value.field == "email"
    assert caught.value.message
    assert isinstance(caught.value, ValueError)


def test_email_error_names_the_value() -> None:
    with pytest.raises(IdentityError) as caught:
        normalise_email(" Not-An-Email ")
    assert "not-an-email" in caught.value.message
    assert str(caught.value).startswith("email: ")


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+39 333 123 4567", None, "+393331234567"),
        ("+39 (333) 123-4567", None, "+393331234567"),
        ("333 1234567", "IT", "+393331234567"),
        ("333 1234567", "it", "+393331234567"),
        ("+34 612 34 56 78", "IT", "+34612345678"),
        ("(202) 456-1111", "US", "+12024561111"),
        ("+86 138 0013 8000", None, "+8613800138000"),
    ],
)
def test_phone_to_e164(raw: str, region: str | None, expected: str) -> None:
    assert normalise_phone(raw, region) == expected


def test_phone_without_country_code_needs_a_region() -> None:
    with pytest.raises(IdentityError) as caught:
        normalise_phone("333 1234567")
    assert caught.value.field == "phone"
    assert "+" in caught.value.message


@pytest.mark.parametrize("raw", ["", "+", "+39 12", "hello", "+999 123456789"])
def test_bad_phone(raw: str) -> None:
    with pytest.raises(IdentityError):
        normalise_phone(raw, "IT")


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("social", " @Anna_Rossi ", "anna_rossi"),
        ("handle", "@@LiWei", "liwei"),
        ("handle", "@ bob", "bob"),
        ("customer_id", "  Cust-0042 ", "Cust-0042"),
        ("external_id", "gid://shopify/Customer/7", "gid://shopify/Customer/7"),
        ("email", " A@B.IT", "a@b.it"),
        ("phone", "+393331234567", "+393331234567"),
    ],
)
def test_normalise_identity_dispatches_by_kind(kind: str, raw: str, expected: str) -> None:
    assert normalise_identity(kind, raw) == expected


@pytest.mark.parametrize(
    ("kind", "raw", "field"),
    [
        ("fax", "123", "kind"),
        ("handle", "@", "handle"),
        ("handle", "two words", "handle"),
        ("customer_id", "   ", "customer_id"),
        ("customer_id", "x" * 321, "customer_id"),
    ],
)
def test_normalise_identity_errors(kind: str, raw: str, field: str) -> None:
    with pytest.raises(IdentityError) as caught:
        normalise_identity(kind, raw)
    assert caught.value.field == field


def test_phone_region_applies_through_normalise_identity() -> None:
    assert normalise_identity("phone", "612 34 56 78", default_region="ES") == "+34612345678"


def test_name_key_folds_case_accents_and_punctuation() -> None:
    assert (
        name_key("  José   GARCÍA-Núñez ") == name_key("jose garcia nunez") == "jose garcia nunez"
    )
    assert name_key("O'Brien") == "obrien"
    assert name_key("王 伟") == "王 伟"
    assert name_key("") == ""


def test_tag_normalised_and_bounded() -> None:
    assert normalise_tag("  VIP   Customer ") == "vip customer"
    with pytest.raises(MemberError):
        normalise_tag("   ")
    with pytest.raises(MemberError) as caught:
        normalise_tag("x" * 65)
    assert caught.value.field == "tag"
    assert normalise_tag("x" * 64) == "x" * 64


def test_country_and_languages() -> None:
    assert clean_country(" it ") == "IT"
    assert clean_country("") == ""
    with pytest.raises(MemberError):
        clean_country("Italy")
    assert clean_languages(["EN", "zh_Hans", "en", " it "]) == ["en", "zh-hans", "it"]
    with pytest.raises(MemberError):
        clean_languages(["english!"])
    with pytest.raises(MemberError):
        clean_languages("en")


# --------------------------------------------------------------------------- properties

local_parts = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-"),
    min_size=1,
    max_size=20,
).filter(lambda s: not s.startswith(".") and not s.endswith(".") and ".." not in s)
domains = st.sampled_from(["example.com", "Example.IT", "mail.shop.ES", "xn--fiqs8s.cn"])
emails = st.builds(lambda local, domain: f"{local}@{domain}", local_parts, domains)
spaces = st.text(alphabet=" \t\n", max_size=3)


@given(email=emails, before=spaces, after=spaces)
def test_email_normalising_twice_is_normalising_once(email: str, before: str, after: str) -> None:
    once = normalise_email(before + email + after)
    assert normalise_email(once) == once
    assert once == once.strip().lower()


@given(
    digits=st.text(alphabet="0123456789", min_size=6, max_size=12),
    region=st.sampled_from(["IT", "ES", "US", "CN", "DE"]),
)
def test_phone_normalising_twice_is_normalising_once(digits: str, region: str) -> None:
    try:
        once = normalise_phone(digits, region)
    except IdentityError:
        return
    assert once.startswith("+")
    assert normalise_phone(once) == once
    assert normalise_phone(once, region) == once


@given(raw=st.text(max_size=40), kind=st.sampled_from(["social", "handle", "customer_id"]))
def test_handles_and_ids_normalising_twice_is_normalising_once(raw: str, kind: str) -> None:
    try:
        once = normalise_identity(kind, raw)
    except IdentityError:
        return
    assert normalise_identity(kind, once) == once


@given(raw=st.text(max_size=60))
def test_name_key_is_idempotent(raw: str) -> None:
    assert name_key(name_key(raw)) == name_key(raw)


@given(raw=st.text(max_size=80))
def test_tag_normalising_twice_is_normalising_once(raw: str) -> None:
    try:
        once = normalise_tag(raw)
    except MemberError:
        return
    assert normalise_tag(once) == once
