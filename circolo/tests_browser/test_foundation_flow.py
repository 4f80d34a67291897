"""Acceptance item 5: a workspace owner signs in with a password and a TOTP code, switches the
interface to Italian and to Chinese, opens the member list and a profile, and accepts a merge
suggestion, in headless Chromium against the live test server.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
)
from django.contrib.auth import get_user_model
from django.test import TestCase

from circolo.activity.services import ActivityIn, activity_record_bulk
from circolo.core.models import Role, Workspace, WorkspaceRole
from circolo.people.models import Identity, IdentityKind, Member, MergeReason, MergeSuggestion
from circolo.people.services import IdentityIn, identity_add, member_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a long pass phrase for the browser test"  # noqa: S105 (test account)


@dataclass
class Scene:
    email: str
    totp_secret: str
    slug: str
    survivor: Member
    twin: Member
    twin_email: str


def totp_now(secret: str) -> str:
    """The current TOTP code as the owner's authenticator app would show it (RFC 6238).

    Near the end of a period the code would expire before the form is sent: wait for the next.
    """
    period = mfa_settings.TOTP_PERIOD
    left = period - time.time() % period
    if left < 5:
        time.sleep(left + 0.1)
    return format_hotp_value(hotp_value(secret, int(time.time()) // mfa_settings.TOTP_PERIOD))


def build_scene() -> Scene:
    """An owner with a verified email and TOTP, a workspace with members, activity, a twin."""
    email = "owner@bottega-aurora.test"
    user = get_user_model().objects.create_user(username=email, email=email, password=PASSWORD)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    workspace = Workspace.objects.create(
        name="Bottega Aurora", slug="aurora", time_zone="Europe/Rome"
    )
    WorkspaceRole.objects.create(workspace=workspace, user=user, role=Role.OWNER)

    def customer(name: str, value: str, *, verified: bool = True) -> Member:
        member = member_create(workspace=workspace, display_name=name, city="Milano")
        identity = IdentityIn(
            channel="email", kind=IdentityKind.EMAIL, value=value, verified=verified, source="shop"
        )
        identity_add(member=member, identity=identity, actor=None)
        return member

    survivor = customer("Giulia Rossi", "giulia@example.it")
    twin_email = "g.rossi@example.com"
    twin = customer("Giulia R.", twin_email, verified=False)
    others = [
        customer("Marco Bianchi", "marco@example.it"),
        customer("李娜", "li.na@example.cn"),
        customer("Lucía Gómez", "lucia@example.es"),
    ]
    now = dt.datetime.now(dt.UTC)
    items = [
        ActivityIn(
            member_id=member.pk,
            kind=kind,
            channel="community",
            occurred_at=now - dt.timedelta(days=n, hours=1),
            source="browser-test",
            source_id=f"{member.pk}-{kind}-{n}",
            properties={"title": f"{kind} {n}"},
        )
        for member in (survivor, twin, *others)
        for n, kind in enumerate(("post", "reply", "review", "order"))
    ]
    # Handlers (rollups, scores) run on commit; here in process, at the end of this block.
    with TestCase.captureOnCommitCallbacks(execute=True):
        activity_record_bulk(workspace=workspace, items=items)
    first, second = sorted((survivor, twin), key=lambda member: member.pk)
    MergeSuggestion.objects.create(
        workspace=workspace,
        member_a=first,
        member_b=second,
        score=0.6,
        reasons=[{"code": MergeReason.SAME_NAME_CITY.value, "detail": "Giulia, Milano"}],
    )
    return Scene(
        email=email,
        totp_secret=secret,
        slug=workspace.slug,
        survivor=survivor,
        twin=twin,
        twin_email=twin_email,
    )


def html_lang(page: Any) -> str:
    return str(page.get_attribute("html", "lang"))


def switch_language(page: Any, code: str) -> None:
    with page.expect_navigation():
        page.select_option("#language-select", code)
    assert html_lang(page) == code


def test_sign_in_switch_language_and_accept_a_merge(
    live_server: Any, page: Any, settings: Any
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    scene = build_scene()
    base = live_server.url

    # Sign in through the real pages: email and password, then the authenticator code.
    page.goto(f"{base}/w/{scene.slug}/")
    assert "/accounts/login/" in page.url
    page.fill("input[name=login]", scene.email)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.locator("form:has(input[name=password]) [type=submit]").first.click()
    assert "/2fa/authenticate/" in page.url, page.url
    page.fill("input[name=code]", totp_now(scene.totp_secret))
    with page.expect_navigation():
        page.locator("form:has(input[name=code]) [type=submit]").first.click()
    page.wait_for_url(re.compile(rf"/w/{scene.slug}/$"))
    assert page.locator("h1", has_text="Bottega Aurora").count() == 1
    members_nav = page.locator("nav.mainnav a[data-nav=members]")

    # The language switcher changes the interface language.
    switch_language(page, "it")
    assert members_nav.inner_text().strip() == "Membri"
    switch_language(page, "zh-hans")
    assert members_nav.inner_text().strip() == "成员"
    switch_language(page, "en")
    assert members_nav.inner_text().strip() == "Members"

    # The member list, with live search narrowing it down.
    members_nav.click()
    page.wait_for_url(re.compile(rf"/w/{scene.slug}/members/"))
    results = page.locator("#member-results")
    assert results.locator("tbody tr").count() == 5
    page.locator("input[name=q]").press_sequentially("Giulia", delay=40)
    page.wait_for_function(
        "() => document.querySelectorAll('#member-results tbody tr').length === 2"
    )
    assert "q=Giulia" in page.url  # the search is in the address, so it can be shared

    # The profile of the survivor shows the suggestion; accepting merges the twin into it.
    page.locator("#member-results a", has_text="Giulia Rossi").first.click()
    page.wait_for_url(re.compile(rf"/members/{scene.survivor.pk}/$"))
    suggestion = page.locator("#merges article")
    assert suggestion.count() == 1
    assert "Giulia R." in suggestion.inner_text()
    with page.expect_navigation():
        suggestion.locator("button[data-action=accept]").click()
    assert page.url.endswith(f"/members/{scene.survivor.pk}/")
    assert page.locator("#merges").count() == 0
    identities = page.locator("#identities").inner_text()
    assert scene.twin_email in identities
    assert page.locator("#history [data-action=undo]").count() == 1

    # The merge is real: the twin now points at the survivor, and its old address leads there.
    assert Member.objects.get(pk=scene.twin.pk).merged_into_id == scene.survivor.pk
    assert Identity.objects.get(value=scene.twin_email).member_id == scene.survivor.pk
    page.goto(f"{base}/w/{scene.slug}/members/{scene.twin.pk}/")
    assert page.url.endswith(f"/members/{scene.survivor.pk}/")
