"""Accounts through django-allauth: sign-up with email verification, sign-in, password reset,
two-factor set-up and sign-in with a code, social buttons only when configured. The pages
render inside Circolo's own layout."""

from __future__ import annotations

import re
import time

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY, format_hotp_value, hotp_value
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from circolo.testing.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def totp_code(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def assert_in_circolo_layout(response) -> None:
    body = response.content.decode()
    assert "circolo/app.css" in body, "page does not extend base.html"
    assert 'class="topbar"' in body
    assert "language-select" in body


def sign_up(client: Client, email: str):
    return client.post(
        reverse("account_signup"),
        {"email": email, "password1": PASSWORD, "password2": PASSWORD},
    )


def verified_user(email="kim@example.com"):
    user = UserFactory(email=email)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return user


def test_sign_up_requires_email_verification_then_signs_in() -> None:
    client = Client()
    page = client.get(reverse("account_signup"))
    assert page.status_code == 200
    assert_in_circolo_layout(page)

    response = sign_up(client, "Ada@Example.com")
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    assert_in_circolo_layout(client.get(response["Location"]))
    user = get_user_model().objects.get(email__iexact="ada@example.com")
    assert not EmailAddress.objects.get(user=user).verified
    # Not signed in until the address is verified.
    assert client.get("/").context["user"].is_anonymous

    assert len(mail.outbox) == 1
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", mail.outbox[0].body).group(0)
    confirm_path = link.split("testserver", 1)[1]
    confirm_page = client.get(confirm_path)
    assert confirm_page.status_code == 200
    assert_in_circolo_layout(confirm_page)
    response = client.post(confirm_path)
    assert response.status_code == 302
    assert EmailAddress.objects.get(user=user).verified
    assert client.get("/").context["user"] == user


def test_two_people_can_sign_up_one_after_the_other() -> None:
    assert sign_up(Client(), "first@example.com").status_code == 302
    assert sign_up(Client(), "second@example.com").status_code == 302
    assert get_user_model().objects.filter(email__endswith="@example.com").count() == 2


def test_sign_up_with_a_weak_password_or_taken_email_is_refused() -> None:
    verified_user("taken@example.com")
    response = Client().post(
        reverse("account_signup"),
        {"email": "new@example.com", "password1": "123", "password2": "123"},
    )
    assert response.status_code == 200
    assert 'class="errorlist' in response.content.decode()
    response = sign_up(Client(), "taken@example.com")
    assert response.status_code in (200, 302)
    assert get_user_model().objects.filter(email__iexact="taken@example.com").count() == 1


def test_sign_in_page_and_wrong_password() -> None:
    verified_user()
    client = Client()
    page = client.get(reverse("account_login"))
    assert page.status_code == 200
    assert_in_circolo_layout(page)
    assert 'class="content narrow auth"' in page.content.decode()
    response = client.post(
        reverse("account_login"), {"login": "kim@example.com", "password": "nope"}
    )
    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    response = client.post(
        reverse("account_login"), {"login": "kim@example.com", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_password_reset_sends_a_link() -> None:
    verified_user()
    client = Client()
    page = client.get(reverse("account_reset_password"))
    assert page.status_code == 200
    assert_in_circolo_layout(page)
    response = client.post(reverse("account_reset_password"), {"email": "kim@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert "/accounts/password/reset/key/" in mail.outbox[0].body
    assert_in_circolo_layout(client.get(response["Location"]))


def test_no_social_buttons_unless_a_provider_is_configured(settings) -> None:
    body = Client().get(reverse("account_login")).content.decode()
    assert "provider-google" not in body
    settings.SOCIALACCOUNT_PROVIDERS = {
        "google": {"APPS": [{"client_id": "id-123", "secret": "s", "key": ""}]}
    }
    body = Client().get(reverse("account_login")).content.decode()
    assert "provider-google" in body
    assert "provider-facebook" not in body


def test_account_pages_link_to_two_factor_set_up() -> None:
    client = Client()
    client.force_login(verified_user())
    page = client.get(reverse("account_email"))
    assert page.status_code == 200
    assert_in_circolo_layout(page)
    assert reverse("mfa_index") in page.content.decode()
    mfa_page = client.get(reverse("mfa_index"))
    assert mfa_page.status_code == 200
    assert reverse("mfa_activate_totp") in mfa_page.content.decode()


def test_totp_activation_recovery_codes_and_sign_in_with_a_code() -> None:
    user = verified_user()
    client = Client()
    client.post(reverse("account_login"), {"login": "kim@example.com", "password": PASSWORD})

    # allauth asks for the password again before a security change.
    response = client.get(reverse("mfa_activate_totp"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    assert_in_circolo_layout(client.get(response["Location"]))
    response = client.post(
        response["Location"], {"password": PASSWORD, "next": reverse("mfa_activate_totp")}
    )
    assert response.status_code == 302
    page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200
    assert_in_circolo_layout(page)
    assert 'class="qr"' in page.content.decode()
    secret = client.session[SECRET_SESSION_KEY]
    response = client.post(reverse("mfa_activate_totp"), {"code": "000000"})
    assert response.status_code == 200
    assert not Authenticator.objects.filter(user=user).exists()
    response = client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_view_recovery_codes")
    assert Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
    codes_page = client.get(response["Location"])
    assert codes_page.status_code == 200
    assert_in_circolo_layout(codes_page)

    client.post(reverse("account_logout"))
    cache.clear()  # a code is accepted once per period; this is a new sign-in
    response = client.post(
        reverse("account_login"), {"login": "kim@example.com", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_authenticate")
    challenge = client.get(response["Location"])
    assert challenge.status_code == 200
    assert_in_circolo_layout(challenge)
    response = client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})
    assert response.status_code == 302
    assert client.get("/").context["user"] == user
