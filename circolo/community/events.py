"""Community events: the team creates them in a space, members who may read the space answer
going or not going, a full event keeps a waitlist, and staff check people in on the day.

Writes lock the event row so that however many members answer at once, "going" never
exceeds the places (PostgreSQL: SELECT ... FOR NO KEY UPDATE; SQLite has one writer at a
time). Each RSVP and each attendance is recorded once as an activity (source "community").
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Count, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from circolo.activity.services import activity_record
from circolo.core.audit import audit_record
from circolo.core.models import Workspace
from circolo.core.permissions import Perm, has_perm
from circolo.people.models import Member

from .markdown import POST_MAX_CHARS, render
from .models import Event, Notification, Rsvp, Space
from .notifications import notify
from .safety import sanction_check
from .selectors import member_moderates, readable_spaces, space_readable
from .services import ACTIVITY_SOURCE, CHANNEL, CommunityError, NotFound, thread_create

TITLE_MAX = 200
LOCATION_MAX = 300
URL_MAX = 500
# Check-in opens this long before the start and closes this long after the end.
CHECK_IN_OPENS = dt.timedelta(hours=1)
CHECK_IN_CLOSES = dt.timedelta(hours=12)
# Reminders to members who are going: (name used in the notification key, time before start).
REMINDERS = (("24h", dt.timedelta(hours=24)), ("1h", dt.timedelta(hours=1)))
PAST_EVENTS_SHOWN = 30


# --------------------------------------------------------------------------- who may do what


def event_can_manage(*, member: Member | None, space: Space) -> bool:
    """The member may create, edit and cancel events in the space: a team member with the
    manage-community permission, or one of the space's moderators."""
    if member is None or member.workspace_id != space.workspace_id:
        return False
    if member.user_id is not None and has_perm(
        user=member.user, workspace=space.workspace, perm=Perm.MANAGE_COMMUNITY
    ):
        return True
    return space.moderators.filter(pk=member.pk).exists()


def event_manageable_spaces(*, member: Member, workspace: Workspace) -> list[Space]:
    """The spaces (not archived) where the member may create events, in display order."""
    spaces = Space.objects.filter(workspace=workspace, archived=False).select_related("parent")
    if member.workspace_id != workspace.pk:
        return []
    if member.user_id is None or not has_perm(
        user=member.user, workspace=workspace, perm=Perm.MANAGE_COMMUNITY
    ):
        spaces = spaces.filter(moderators=member)
    return list(spaces)


def event_can_check_in(*, member: Member | None, event: Event) -> bool:
    """The member may check attendees in: anyone on the team, or a moderator of the space."""
    if member is None or member.workspace_id != event.workspace_id:
        return False
    return member_moderates(member, event.space)


# --------------------------------------------------------------------------- input


@dataclass(frozen=True)
class EventIn:
    """What the team types: start and end are wall-clock times in `timezone` (naive), or
    aware datetimes (then the zone only says how to show them)."""

    title: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    timezone: str
    description: str = ""
    format: str = Event.Format.ONLINE
    location: str = ""
    url: str = ""
    capacity: int | None = None


def _zone(name: str) -> zoneinfo.ZoneInfo:
    name = str(name).strip()
    try:
        if not name:
            raise ValueError(name)
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise CommunityError(
            "timezone",
            _("“%(zone)s” is not a time zone: use a name such as Europe/Rome or America/New_York.")
            % {"zone": name[:64]},
        ) from None


def _to_utc(value: dt.datetime, zone: zoneinfo.ZoneInfo, field: str) -> dt.datetime:
    """A wall-clock time in the zone as UTC; a time skipped by a clock change is refused."""
    if not isinstance(value, dt.datetime):
        raise CommunityError(field, _("Give a date and a time."))
    if timezone.is_aware(value):
        return value.astimezone(dt.UTC)
    local = value.replace(tzinfo=zone)
    moment = local.astimezone(dt.UTC)
    if moment.astimezone(zone).replace(tzinfo=None) != value:
        raise CommunityError(
            field,
            _("This time does not exist in %(zone)s (the clocks change then): choose another.")
            % {"zone": zone.key},
        )
    return moment


def _clean(data: EventIn) -> dict[str, Any]:
    """The event's fields from the team's input, or CommunityError naming the field."""
    title = " ".join(str(data.title).split())
    if not title:
        raise CommunityError("title", _("Give the event a title."))
    if len(title) > TITLE_MAX:
        raise CommunityError(
            "title", _("A title has at most %(limit)d characters.") % {"limit": TITLE_MAX}
        )
    description = str(data.description).strip()
    if len(description) > POST_MAX_CHARS:
        raise CommunityError(
            "description",
            _("A description has at most %(limit)s characters.") % {"limit": f"{POST_MAX_CHARS:,}"},
        )
    if data.format not in Event.Format.values:
        raise CommunityError("format", _("Choose online or in person."))
    location = " ".join(str(data.location).split())
    url = str(data.url).strip()
    if data.format == Event.Format.IN_PERSON:
        if not location:
            raise CommunityError("location", _("Say where the event takes place."))
        if len(location) > LOCATION_MAX:
            raise CommunityError(
                "location",
                _("A place has at most %(limit)d characters.") % {"limit": LOCATION_MAX},
            )
    if data.format == Event.Format.ONLINE and not url:
        raise CommunityError("url", _("Give the link members use to join the event."))
    if url:
        if not (url.startswith("https://") or url.startswith("http://")) or " " in url:
            raise CommunityError("url", _("The link must start with https:// or http://."))
        if len(url) > URL_MAX:
            raise CommunityError(
                "url", _("A link has at most %(limit)d characters.") % {"limit": URL_MAX}
            )
    zone = _zone(data.timezone)
    starts_at = _to_utc(data.starts_at, zone, "starts_at")
    ends_at = _to_utc(data.ends_at, zone, "ends_at")
    if ends_at <= starts_at:
        raise CommunityError("ends_at", _("The end must be after the start."))
    capacity = data.capacity
    if capacity is not None and (not isinstance(capacity, int) or capacity < 1):
        raise CommunityError(
            "capacity", _("Places must be a whole number of at least 1, or empty for no limit.")
        )
    return {
        "title": title,
        "description": description,
        "html": render(description, trusted=True) if description else "",
        "format": data.format,
        "location": location if data.format == Event.Format.IN_PERSON else "",
        "url": url,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "timezone": zone.key,
        "capacity": capacity,
    }


# --------------------------------------------------------------------------- the team's writes


def event_create(
    *, space: Space, host: Member, data: EventIn, now: dt.datetime | None = None
) -> Event:
    """A new event in the space with its discussion thread (by `host`, who must be allowed to
    manage events there); the start must be in the future. Audited."""
    if host.workspace_id != space.workspace_id or not space_readable(space, host):
        raise NotFound()
    if not event_can_manage(member=host, space=space):
        raise CommunityError("space", _("Only the team or the space's moderators create events."))
    fields = _clean(data)
    moment = now or timezone.now()
    if fields["starts_at"] <= moment:
        raise CommunityError("starts_at", _("The start must be in the future."))
    body = fields["description"] or _("Questions and plans for this event.")
    with transaction.atomic():
        thread = thread_create(
            space=space, author=host, title=fields["title"], body=body, now=moment
        )
        event = Event.objects.create(
            workspace_id=space.workspace_id,
            space=space,
            thread=thread,
            created_by=host,
            **fields,
        )
        audit_record(
            workspace=space.workspace,
            actor=host.user,
            action="event.create",
            target=event,
            data={"space": space.pk},
        )
    return event


def event_update(
    *, event: Event, actor: Member, data: EventIn, now: dt.datetime | None = None
) -> Event:
    """Change an event that is not cancelled. Places cannot drop below the members already
    going; more places move the earliest waiting members in (and tell them). Audited."""
    if actor.workspace_id != event.workspace_id:
        raise NotFound()
    if not event_can_manage(member=actor, space=event.space):
        raise CommunityError("space", _("Only the team or the space's moderators edit events."))
    fields = _clean(data)
    moment = now or timezone.now()
    with transaction.atomic():
        locked = _locked(event)
        if locked.cancelled_at is not None:
            raise CommunityError("event", _("A cancelled event cannot be changed."))
        going = Rsvp.objects.filter(event=locked, status=Rsvp.Status.GOING).count()
        if fields["capacity"] is not None and fields["capacity"] < going:
            raise CommunityError(
                "capacity",
                _("%(going)d members are already going: places cannot be fewer than that.")
                % {"going": going},
            )
        changed = [name for name, value in fields.items() if getattr(locked, name) != value]
        for name in changed:
            setattr(locked, name, fields[name])
        if changed:
            locked.save(update_fields=changed)
        _promote(locked, moment)
        audit_record(
            workspace=locked.space.workspace,
            actor=actor.user,
            action="event.update",
            target=locked,
            data={"fields": changed},
        )
    _copy(locked, event)
    return event


def event_cancel(*, event: Event, actor: Member, now: dt.datetime | None = None) -> Event:
    """Cancel the event (once); members going or waiting are told. Audited."""
    if actor.workspace_id != event.workspace_id:
        raise NotFound()
    if not event_can_manage(member=actor, space=event.space):
        raise CommunityError("space", _("Only the team or the space's moderators cancel events."))
    moment = now or timezone.now()
    with transaction.atomic():
        locked = _locked(event)
        if locked.cancelled_at is None:
            locked.cancelled_at = moment
            locked.save(update_fields=["cancelled_at"])
            rsvps = Rsvp.objects.filter(
                event=locked, status__in=[Rsvp.Status.GOING, Rsvp.Status.WAITLIST]
            ).select_related("member")
            for rsvp in rsvps:
                notify(
                    recipient=rsvp.member,
                    kind=Notification.Kind.EVENT,
                    key=f"event-cancelled:{locked.pk}",
                    actor=actor,
                    event=locked,
                    data={"what": "cancelled", "title": locked.title},
                    now=moment,
                )
            audit_record(
                workspace=locked.space.workspace,
                actor=actor.user,
                action="event.cancel",
                target=locked,
            )
    _copy(locked, event)
    return event


def _locked(event: Event) -> Event:
    """The event row, locked until the transaction ends (serialises RSVPs and edits)."""
    return Event.objects.select_for_update(no_key=True).select_related("space").get(pk=event.pk)


def _copy(source: Event, target: Event) -> None:
    if source is not target:
        for field in Event._meta.concrete_fields:
            setattr(target, field.attname, getattr(source, field.attname))


def _promote(event: Event, now: dt.datetime) -> list[Rsvp]:
    """Fill free places from the waitlist, earliest first, telling each member promoted.
    The caller holds the event's lock."""
    if event.cancelled_at is not None:
        return []
    waiting = Rsvp.objects.filter(event=event, status=Rsvp.Status.WAITLIST).select_related("member")
    if event.capacity is None:
        chosen = list(waiting.order_by("waiting_since", "pk"))
    else:
        going = Rsvp.objects.filter(event=event, status=Rsvp.Status.GOING).count()
        free = event.capacity - going
        chosen = list(waiting.order_by("waiting_since", "pk")[:free]) if free > 0 else []
    for rsvp in chosen:
        rsvp.status = Rsvp.Status.GOING
        rsvp.waiting_since = None
        rsvp.updated_at = now
        rsvp.save(update_fields=["status", "waiting_since", "updated_at"])
        notify(
            recipient=rsvp.member,
            kind=Notification.Kind.EVENT,
            key=f"event-place:{event.pk}:{rsvp.member_id}:{int(now.timestamp())}",
            event=event,
            data={"what": "promoted", "title": event.title},
            now=now,
        )
    return chosen


# --------------------------------------------------------------------------- members' answers


def rsvp_set(*, event: Event, member: Member, going: bool, now: dt.datetime | None = None) -> Rsvp:
    """The member's answer. Going to a full event puts them on the waitlist; leaving frees a
    place for the earliest waiting member. Not for a cancelled event or one that started.
    The first "going" records an "event_rsvp" activity, once per event and member."""
    if member.workspace_id != event.workspace_id or member.merged_into_id is not None:
        raise NotFound()
    if not space_readable(event.space, member):
        raise NotFound()
    if going:
        sanction_check(member)  # a silenced member may still say they are not coming
    moment = now or timezone.now()
    with transaction.atomic():
        locked = _locked(event)
        if locked.cancelled_at is not None:
            raise CommunityError("event", _("This event was cancelled."))
        if locked.starts_at <= moment:
            raise CommunityError("event", _("This event has already started: answers are closed."))
        rsvp = Rsvp.objects.filter(event=locked, member=member).first()
        if rsvp is None:
            rsvp = Rsvp(
                workspace_id=locked.workspace_id,
                event=locked,
                member=member,
                status=Rsvp.Status.NOT_GOING,
                created_at=moment,
                updated_at=moment,
            )
        was = rsvp.status if rsvp.pk else None
        if going:
            if was in (Rsvp.Status.GOING, Rsvp.Status.WAITLIST):
                return rsvp
            taken = Rsvp.objects.filter(event=locked, status=Rsvp.Status.GOING).count()
            if locked.capacity is None or taken < locked.capacity:
                rsvp.status, rsvp.waiting_since = Rsvp.Status.GOING, None
            else:
                rsvp.status, rsvp.waiting_since = Rsvp.Status.WAITLIST, moment
        else:
            if was == Rsvp.Status.NOT_GOING:
                return rsvp
            rsvp.status, rsvp.waiting_since = Rsvp.Status.NOT_GOING, None
        rsvp.updated_at = moment
        rsvp.save()
        if was == Rsvp.Status.GOING:
            _promote(locked, moment)
        if going:
            activity_record(
                workspace=locked.space.workspace,
                member=member,
                kind="event_rsvp",
                channel=CHANNEL,
                occurred_at=moment,
                source=ACTIVITY_SOURCE,
                source_id=f"rsvp:{locked.pk}:{member.pk}",
                properties={"event": locked.pk, "space": locked.space_id},
            )
    return rsvp


def rsvp_check_in(
    *, rsvp: Rsvp, actor: Member, undo: bool = False, now: dt.datetime | None = None
) -> Rsvp:
    """Mark that the member came (or, `undo`, take a mistaken check-in back), from an hour
    before the start to 12 hours after the end. The "event_attendance" activity is recorded
    once, and stays if the check-in is undone."""
    event = rsvp.event
    if actor.workspace_id != rsvp.workspace_id:
        raise NotFound()
    if not event_can_check_in(member=actor, event=event):
        raise CommunityError("rsvp", _("Only the team or the space's moderators check people in."))
    moment = now or timezone.now()
    if event.cancelled_at is not None:
        raise CommunityError("rsvp", _("This event was cancelled."))
    if not (event.starts_at - CHECK_IN_OPENS <= moment <= event.ends_at + CHECK_IN_CLOSES):
        raise CommunityError(
            "rsvp",
            _("Check-in is open from an hour before the start to 12 hours after the end."),
        )
    with transaction.atomic():
        locked = Rsvp.objects.select_for_update(no_key=True).get(pk=rsvp.pk)
        if undo:
            locked.checked_in_at = None
        elif locked.checked_in_at is None:
            locked.checked_in_at = moment
        locked.updated_at = moment
        locked.save(update_fields=["checked_in_at", "updated_at"])
        if not undo:
            activity_record(
                workspace=event.space.workspace,
                member=rsvp.member,
                kind="event_attendance",
                channel=CHANNEL,
                occurred_at=moment,
                source=ACTIVITY_SOURCE,
                source_id=f"attendance:{event.pk}:{rsvp.member_id}",
                properties={"event": event.pk, "space": event.space_id},
            )
    rsvp.checked_in_at, rsvp.updated_at = locked.checked_in_at, locked.updated_at
    return rsvp


# --------------------------------------------------------------------------- reminders


def event_reminders_send(*, now: dt.datetime | None = None) -> int:
    """Remind members going to events that start within 24 hours, and again within the hour;
    each reminder is sent once (its notification key). Returns the reminders created."""
    moment = now or timezone.now()
    events = Event.objects.filter(
        cancelled_at__isnull=True,
        starts_at__gt=moment,
        starts_at__lte=moment + REMINDERS[0][1],
    ).select_related("space", "thread")
    sent = 0
    for event in events:
        # The nearest reminder that is due: an event an hour away gets only "1h".
        name = next(
            label for label, before in reversed(REMINDERS) if event.starts_at - before <= moment
        )
        key = f"event-reminder:{event.pk}:{name}"
        told = set(
            Notification.objects.filter(event=event, key=key).values_list("recipient_id", flat=True)
        )
        rsvps = (
            Rsvp.objects.filter(event=event, status=Rsvp.Status.GOING)
            .exclude(member_id__in=told)
            .select_related("member")
        )
        for rsvp in rsvps:
            created = notify(
                recipient=rsvp.member,
                kind=Notification.Kind.EVENT,
                key=key,
                event=event,
                data={"what": "reminder", "before": name, "title": event.title},
                now=moment,
            )
            sent += created is not None
    return sent


# --------------------------------------------------------------------------- reading


@dataclass
class EventCard:
    """One event as a viewer sees it: counts, their answer and place on the waitlist."""

    event: Event
    going: int
    waiting: int
    mine: Rsvp | None
    position: int | None  # on the waitlist, 1 = next in

    @property
    def places_left(self) -> int | None:
        if self.event.capacity is None:
            return None
        return max(0, self.event.capacity - self.going)

    @property
    def status(self) -> str:
        return self.mine.status if self.mine is not None else ""


def events_readable(*, workspace: Workspace, viewer: Member | None) -> QuerySet[Event]:
    """Events in the spaces this viewer may read."""
    spaces = readable_spaces(workspace.pk, viewer)
    return Event.objects.filter(workspace=workspace, space__in=spaces).select_related("space")


def event_for_viewer(*, workspace: Workspace, event_id: int, viewer: Member | None) -> Event | None:
    """The event if it exists in the workspace and the viewer may read its space."""
    event = (
        Event.objects.filter(workspace=workspace, pk=event_id)
        .select_related("space", "space__parent", "thread")
        .first()
    )
    if event is None or not space_readable(event.space, viewer):
        return None
    return event


def event_cards(events: list[Event], viewer: Member | None) -> list[EventCard]:
    """Cards for these events in three queries, however many there are."""
    ids = [event.pk for event in events]
    counts: dict[int, dict[str, int]] = {}
    for event_id, status, n in (
        Rsvp.objects.filter(event_id__in=ids, status__in=[Rsvp.Status.GOING, Rsvp.Status.WAITLIST])
        .values_list("event_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    ):
        counts.setdefault(event_id, {})[status] = n
    mine: dict[int, Rsvp] = {}
    positions: dict[int, int] = {}
    if viewer is not None and ids:
        mine = {
            rsvp.event_id: rsvp for rsvp in Rsvp.objects.filter(event_id__in=ids, member=viewer)
        }
        waiting_in = [rsvp for rsvp in mine.values() if rsvp.status == Rsvp.Status.WAITLIST]
        if waiting_in:
            positions = _positions(waiting_in)
    return [
        EventCard(
            event=event,
            going=counts.get(event.pk, {}).get(Rsvp.Status.GOING, 0),
            waiting=counts.get(event.pk, {}).get(Rsvp.Status.WAITLIST, 0),
            mine=mine.get(event.pk),
            position=positions.get(event.pk),
        )
        for event in events
    ]


def _positions(waiting: list[Rsvp]) -> dict[int, int]:
    """Waitlist place (1-based) of each of these RSVPs, by event; one query."""
    queue: dict[int, list[int]] = {}
    for event_id, pk in (
        Rsvp.objects.filter(
            event_id__in=[rsvp.event_id for rsvp in waiting], status=Rsvp.Status.WAITLIST
        )
        .order_by("waiting_since", "pk")
        .values_list("event_id", "pk")
    ):
        queue.setdefault(event_id, []).append(pk)
    return {rsvp.event_id: queue.get(rsvp.event_id, []).index(rsvp.pk) + 1 for rsvp in waiting}


def events_split(
    *, workspace: Workspace, viewer: Member | None, now: dt.datetime | None = None
) -> tuple[list[EventCard], list[EventCard]]:
    """Upcoming (not ended, soonest first) and past (latest first) events for the viewer."""
    moment = now or timezone.now()
    readable = events_readable(workspace=workspace, viewer=viewer)
    upcoming = list(readable.filter(ends_at__gte=moment).order_by("starts_at", "pk"))
    past = list(
        readable.filter(ends_at__lt=moment).order_by("-starts_at", "-pk")[:PAST_EVENTS_SHOWN]
    )
    cards = event_cards(upcoming + past, viewer)
    return cards[: len(upcoming)], cards[len(upcoming) :]


def event_attendees(event: Event) -> list[Rsvp]:
    """The event's answers for the team: going, then waiting in order, then not going."""
    order = {Rsvp.Status.GOING: 0, Rsvp.Status.WAITLIST: 1, Rsvp.Status.NOT_GOING: 2}
    rows = list(Rsvp.objects.filter(event=event).select_related("member", "member__community"))
    return sorted(
        rows,
        key=lambda rsvp: (
            order.get(Rsvp.Status(rsvp.status), 3),
            rsvp.waiting_since or rsvp.created_at,
            rsvp.pk,
        ),
    )


def event_local_times(event: Event) -> tuple[dt.datetime, dt.datetime]:
    """Start and end in the event's own time zone."""
    zone = zoneinfo.ZoneInfo(event.timezone)
    return event.starts_at.astimezone(zone), event.ends_at.astimezone(zone)


def events_upcoming(
    *, spaces: list[Space], limit: int = 3, now: dt.datetime | None = None
) -> list[Event]:
    """The next events (not cancelled, not ended) in these spaces, soonest first: one query."""
    moment = now or timezone.now()
    return list(
        Event.objects.filter(space__in=spaces, cancelled_at__isnull=True, ends_at__gte=moment)
        .select_related("space")
        .order_by("starts_at", "pk")[:limit]
    )
