"""The .ics writer: RFC 5545 escaping, folding at 75 octets without splitting a UTF-8
character, CRLF ends, and output that reads back to the event's fields."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from circolo.community.events import EventIn, event_cancel, event_create
from circolo.community.ics import event_ics, ics_escape, ics_fold
from circolo.community.models import Event
from circolo.community.services import member_for_user, space_create

NOW = dt.datetime(2031, 5, 1, 8, 0, tzinfo=dt.UTC)


def unfold(text: str) -> list[str]:
    """Content lines back from a calendar file (RFC 5545 3.1)."""
    assert text.endswith("\r\n")
    lines: list[str] = []
    for raw in text[:-2].split("\r\n"):
        assert "\n" not in raw and "\r" not in raw
        if raw.startswith(" "):
            lines[-1] += raw[1:]
        else:
            lines.append(raw)
    return lines


def unescape(value: str) -> str:
    out, chars = [], iter(value)
    for char in chars:
        if char == "\\":
            following = next(chars)
            out.append("\n" if following in "nN" else following)
        else:
            out.append(char)
    return "".join(out)


def fields(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in unfold(text):
        name, _, value = line.partition(":")
        found.setdefault(name, value)
    return found


def test_escape_special_characters() -> None:
    assert ics_escape("a\\b;c,d\ne\r\nf") == "a\\\\b\\;c\\,d\\ne\\nf"
    assert unescape(ics_escape("a\\b;c,d\ne")) == "a\\b;c,d\ne"


def test_fold_chinese_text_at_75_octets_without_splitting_a_character() -> None:
    line = "SUMMARY:" + "咖啡品鉴会" * 20  # 3 octets each
    folded = ics_fold(line)
    pieces = folded.split("\r\n")
    assert len(pieces) > 1
    for n, piece in enumerate(pieces):
        size = len(piece.encode("utf-8"))
        assert size <= 75
        if n:
            assert piece.startswith(" ")
        piece.encode("utf-8").decode("utf-8")  # every piece is whole UTF-8
    assert "".join(p[1:] if n else p for n, p in enumerate(pieces)) == line


def test_short_line_is_not_folded() -> None:
    assert ics_fold("VERSION:2.0") == "VERSION:2.0"
    exact = "X" * 75
    assert ics_fold(exact) == exact
    assert ics_fold(exact + "Y") == exact + "\r\n Y"


@given(st.text(min_size=0, max_size=400))
def test_fold_then_unfold_is_identity_for_any_text(text: str) -> None:
    line = "DESCRIPTION:" + ics_escape(text)
    folded = ics_fold(line) + "\r\n"
    assert all(len(piece.encode("utf-8")) <= 75 for piece in folded[:-2].split("\r\n"))
    (back,) = unfold(folded)
    expected = text.replace("\r\n", "\n").replace("\r", "\n")
    expected = "".join(c for c in expected if c in "\t\n" or not (ord(c) < 32 or ord(c) == 127))
    assert back == line and unescape(back.partition(":")[2]) == expected


@pytest.fixture
def event(workspace: Any, owner: Any) -> Event:
    space = space_create(workspace=workspace, actor=None, name="Incontri")
    host = member_for_user(workspace=workspace, user=owner.user)
    return event_create(
        space=space,
        host=host,
        data=EventIn(
            title="咖啡品鉴会; tasting, with friends",
            description="Line one\nLine two; with \\ backslash, and comma\n" + "长" * 60,
            format=Event.Format.IN_PERSON,
            location="Via Roma 1, Milano",
            starts_at=dt.datetime(2031, 6, 1, 18, 30),
            ends_at=dt.datetime(2031, 6, 1, 20, 0),
            timezone="Asia/Shanghai",
        ),
    )


@pytest.mark.django_db
def test_the_file_reads_back_to_the_events_fields(event: Event) -> None:
    text = event_ics(
        event=event,
        workspace_slug="bottega",
        page_url="https://shop.example/c/bottega/events/1/",
        join_link=False,
        now=NOW,
    )
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    lines = unfold(text)
    assert lines[:5] == [
        "BEGIN:VCALENDAR",
        "PRODID:-//Circolo//Community events//EN",
        "VERSION:2.0",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
    ]
    assert lines[-2:] == ["END:VEVENT", "END:VCALENDAR"]
    found = fields(text)
    assert found["UID"] == f"event-{event.pk}@bottega.circolo"
    assert found["DTSTAMP"] == "20310501T080000Z"
    assert found["DTSTART"] == "20310601T103000Z"  # 18:30 in Shanghai (UTC+8)
    assert found["DTEND"] == "20310601T120000Z"
    assert unescape(found["SUMMARY"]) == event.title
    assert unescape(found["DESCRIPTION"]) == event.description
    assert unescape(found["LOCATION"]) == "Via Roma 1, Milano"
    assert found["URL"] == "https://shop.example/c/bottega/events/1/"
    assert found["STATUS"] == "CONFIRMED"


@pytest.mark.django_db
def test_online_link_only_when_allowed_and_cancelled_status(event: Event) -> None:
    Event.objects.filter(pk=event.pk).update(
        format=Event.Format.ONLINE, location="", url="https://meet.example.com/x"
    )
    event.refresh_from_db()
    hidden = fields(
        event_ics(event=event, workspace_slug="b", page_url="u", join_link=False, now=NOW)
    )
    assert "LOCATION" not in hidden
    shown = fields(
        event_ics(event=event, workspace_slug="b", page_url="u", join_link=True, now=NOW)
    )
    assert shown["LOCATION"] == "https://meet.example.com/x"
    event_cancel(event=event, actor=event.created_by, now=NOW)
    cancelled = fields(
        event_ics(event=event, workspace_slug="b", page_url="u", join_link=True, now=NOW)
    )
    assert cancelled["STATUS"] == "CANCELLED"


@pytest.mark.django_db
def test_download_headers(client: Any, workspace: Any, event: Event) -> None:
    response = client.get(f"/c/{workspace.slug}/events/{event.pk}/event.ics")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="tasting-with-friends.ics"'
    found = fields(response.content.decode("utf-8"))
    assert found["URL"] == f"http://testserver/c/{workspace.slug}/events/{event.pk}/"
