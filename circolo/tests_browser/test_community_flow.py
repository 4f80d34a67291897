"""Issue 5, acceptance 1, in headless Chromium against the live test server: a member signs
up through the community's join page, posts a question in Italian, another member answers,
the asker accepts the answer, a moderator hides a flagged post from the moderation queue,
and a member RSVPs to an event and downloads its .ics file.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.utils import timezone

from circolo.activity.models import Activity
from circolo.community.events import EventIn, event_create
from circolo.community.models import Flag, Post, Rsvp, Thread
from circolo.community.services import member_for_user, space_create
from circolo.core.models import Role, Workspace, WorkspaceRole

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "una frase lunga per il test del browser"  # noqa: S105 (test account)


def user_with_session(live_server: Any, email: str) -> tuple[Any, dict[str, str]]:
    """A user with a verified email, signed in: the session cookie for a browser context."""
    user = get_user_model().objects.create_user(username=email, email=email, password=PASSWORD)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    client = Client()
    client.force_login(user)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME]
    return user, {"name": cookie.key, "value": cookie.value, "url": live_server.url}


def test_ask_answer_accept_moderate_and_rsvp(
    chromium: Any, page: Any, live_server: Any, settings: Any
) -> None:
    settings.CIRCOLO_MFA_ENFORCE = False
    settings.CIRCOLO_COMMUNITY_PAGE_CACHE_SECONDS = 0
    workspace = Workspace.objects.create(
        name="Bottega Aurora", slug="aurora", time_zone="Europe/Rome"
    )
    space = space_create(
        workspace=workspace, actor=None, name="Domande", slug="domande", language="it"
    )
    base = f"{live_server.url}/c/{workspace.slug}"

    # 1. A member signs up on the community's join page and confirms the email address.
    page.goto(f"{base}/join/")
    page.locator("#join-signup").click()
    page.locator("input[name=email]").fill("giulia@example.com")
    page.locator("input[name=password1]").fill(PASSWORD)
    page.locator("input[name=password2]").fill(PASSWORD)
    page.locator("form button[type=submit]").last.click()
    page.wait_for_url(re.compile(r".*/accounts/confirm-email/.*"))
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+", str(mail.outbox[-1].body))
    assert link is not None
    page.goto(link.group(0).replace("http://testserver", live_server.url))
    page.locator("form button[type=submit]").last.click()  # confirm the address
    page.wait_for_url(re.compile(rf".*/c/{workspace.slug}/.*"))
    asker_user = get_user_model().objects.get(email="giulia@example.com")
    asker = member_for_user(workspace=workspace, user=asker_user)
    assert WorkspaceRole.objects.get(workspace=workspace, user=asker_user).role == Role.MEMBER

    # 2. She asks a question in Italian, with the interface in Italian.
    page.goto(f"{base}/s/{space.slug}/new/")
    page.locator("#language-select").select_option("it")
    page.wait_for_load_state()
    page.locator("select[name=kind]").select_option("question")
    page.locator("input[name=title]").fill("Quanto fine deve essere la macinatura per la moka?")
    page.locator("textarea[name=body]").fill("Uso una moka da 3 tazze: il caffè esce troppo amaro.")
    page.locator("form.stack button[type=submit]").first.click()
    page.wait_for_selector("#post-1")
    thread = Thread.objects.get(workspace=workspace)
    assert thread.kind == "question" and thread.language == "it"
    assert "Domanda" in page.locator("h1").inner_text()  # the Italian interface

    # 3. Another member answers, in a browser of their own.
    _luca_user, luca_cookie = user_with_session(live_server, "luca@example.com")
    luca_context = chromium.new_context(locale="it-IT")
    luca_context.add_cookies([luca_cookie])
    luca = luca_context.new_page()
    luca.goto(f"{base}/t/{thread.pk}/")
    luca.locator("textarea[name=body]").fill("Prova una macinatura media, come la sabbia fine.")
    luca.locator(
        "#reply-title ~ form button[type=submit], section form.stack button[type=submit]"
    ).first.click()
    luca.wait_for_selector("#post-2")

    # 4. The asker accepts the answer.
    page.goto(f"{base}/t/{thread.pk}/")
    page.locator("#post-2 form[action$='/accept/'] button").click()
    page.wait_for_selector("#post-2.accepted")
    thread.refresh_from_db()
    answer = Post.objects.get(thread=thread, number=2)
    assert thread.accepted_post_id == answer.pk
    assert Activity.objects.filter(
        kind="accepted_answer", source_id__startswith="accepted:"
    ).exists()

    # 5. A spam reply is flagged by the asker; a moderator hides it from the queue.
    _spammer, spam_cookie = user_with_session(live_server, "spam@example.com")
    spam_context = chromium.new_context()
    spam_context.add_cookies([spam_cookie])
    spammer = spam_context.new_page()
    spammer.goto(f"{base}/t/{thread.pk}/")
    spammer.locator("textarea[name=body]").fill("Compra follower a poco prezzo, scrivimi!")
    spammer.locator("section form.stack button[type=submit]").first.click()
    spammer.wait_for_selector("#post-3")
    page.goto(f"{base}/t/{thread.pk}/")
    page.locator("#post-3 details.flag summary").click()
    page.locator("#post-3 select[name=reason]").select_option("spam")
    page.locator("#post-3 details.flag button[type=submit]").click()
    page.wait_for_load_state()
    spam = Post.objects.get(thread=thread, number=3)
    assert Flag.objects.filter(post=spam, outcome="open").count() == 1

    moderator_user, moderator_cookie = user_with_session(live_server, "moderatrice@example.com")
    WorkspaceRole.objects.create(workspace=workspace, user=moderator_user, role=Role.MODERATOR)
    moderator_context = chromium.new_context(locale="en-US")
    moderator_context.add_cookies([moderator_cookie])
    moderator = moderator_context.new_page()
    moderator.goto(f"{live_server.url}/w/{workspace.slug}/community/moderation/")
    row = moderator.locator(f"form:has(input[name=post][value='{spam.pk}'])")
    row.locator("input[name=reason]").fill("spam")
    row.locator("button[value=hide]").click()
    moderator.wait_for_load_state()
    spam.refresh_from_db()
    assert spam.hidden_at is not None
    assert Flag.objects.get(post=spam).outcome == "upheld"
    page.goto(f"{base}/t/{thread.pk}/")
    assert "Compra follower" not in page.locator("#posts").inner_text()

    # 6. A member RSVPs to an event and downloads its .ics file.
    host = member_for_user(workspace=workspace, user=moderator_user)
    space.moderators.add(host)  # a space's moderators run its events
    starts = (timezone.now() + dt.timedelta(days=3)).astimezone(dt.UTC).replace(microsecond=0)
    event = event_create(
        space=space,
        host=host,
        data=EventIn(
            title="Degustazione di moka",
            starts_at=starts,
            ends_at=starts + dt.timedelta(hours=2),
            timezone="Europe/Rome",
            format="in_person",
            location="Via Roma 1, Torino",
            capacity=10,
        ),
    )
    luca.goto(f"{base}/events/{event.pk}/")
    luca.locator("button[name=going][value=yes]").click()
    luca.wait_for_load_state()
    rsvp = Rsvp.objects.get(event=event)
    assert rsvp.status == "going"
    assert Activity.objects.filter(kind="event_rsvp").count() == 1
    with luca.expect_download() as download_info:
        luca.locator("a[href$='event.ics']").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".ics")
    text = Path(download.path()).read_text(encoding="utf-8")
    assert "BEGIN:VCALENDAR" in text and "SUMMARY:Degustazione di moka" in text
    assert f"DTSTART:{starts.strftime('%Y%m%dT%H%M%SZ')}" in text
    assert asker.pk != rsvp.member_id
    for context in (luca_context, spam_context, moderator_context):
        context.close()
