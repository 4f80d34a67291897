"""Calendar files (RFC 5545) for community events, written by hand: one VEVENT in a
VCALENDAR, text escaped, lines folded at 75 octets without splitting a UTF-8 character,
CRLF line ends. Times are in UTC ("Z"), so no VTIMEZONE is needed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from .models import Event

PRODID = "-//Circolo//Community events//EN"
LINE_OCTETS = 75


def ics_escape(text: str) -> str:
    """TEXT value escaping: backslash, semicolon, comma, and newlines as \\n; other control
    characters (not allowed in TEXT) are dropped."""
    text = str(text).replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(char for char in text if char in "\t\n" or not _control(char))
    text = text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return text.replace("\n", "\\n")


def _control(char: str) -> bool:
    return ord(char) < 0x20 or ord(char) == 0x7F


def ics_fold(line: str) -> str:
    """Fold a content line into pieces of at most 75 octets joined by CRLF + space; a
    multi-byte character always stays whole."""
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    limit = LINE_OCTETS
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            pieces.append("".join(current))
            current, size = [], 0
            limit = LINE_OCTETS - 1  # continuation lines start with a space
        current.append(char)
        size += width
    pieces.append("".join(current))
    return "\r\n ".join(pieces)


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def _lines(pairs: Iterable[tuple[str, str]]) -> str:
    return "".join(f"{ics_fold(f'{name}:{value}')}\r\n" for name, value in pairs)


def event_uid(event: Event, workspace_slug: str) -> str:
    """A stable identifier, so a calendar updates the event rather than adding a copy."""
    return f"event-{event.pk}@{workspace_slug}.circolo"


def event_ics(
    *,
    event: Event,
    workspace_slug: str,
    page_url: str,
    join_link: bool,
    now: dt.datetime,
) -> str:
    """The event as a calendar file. `join_link`: an online event's link may be given (to
    members going and to staff); otherwise its location is left out."""
    location = event.location
    if event.format == Event.Format.ONLINE:
        location = event.url if join_link else ""
    pairs: list[tuple[str, str]] = [
        ("BEGIN", "VCALENDAR"),
        ("PRODID", PRODID),
        ("VERSION", "2.0"),
        ("CALSCALE", "GREGORIAN"),
        ("METHOD", "PUBLISH"),
        ("BEGIN", "VEVENT"),
        ("UID", event_uid(event, workspace_slug)),
        ("DTSTAMP", _utc(now)),
        ("DTSTART", _utc(event.starts_at)),
        ("DTEND", _utc(event.ends_at)),
        ("SUMMARY", ics_escape(event.title)),
    ]
    if event.description:
        pairs.append(("DESCRIPTION", ics_escape(event.description)))
    if location:
        pairs.append(("LOCATION", ics_escape(location)))
    pairs.append(("URL", page_url))
    pairs.append(("STATUS", "CANCELLED" if event.cancelled_at is not None else "CONFIRMED"))
    pairs += [("END", "VEVENT"), ("END", "VCALENDAR")]
    return _lines(pairs)
