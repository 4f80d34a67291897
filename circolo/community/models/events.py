"""Community events: online or in person, with RSVPs, a waitlist and check-in."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from circolo.core.models import Workspace
from circolo.people.models import Member

from .forum import Space, Thread


class Event(models.Model):
    """Times are stored in UTC; `timezone` is the IANA zone the event is held in, used to
    show local times and in the .ics file."""

    class Format(models.TextChoices):
        ONLINE = "online", _("Online")
        IN_PERSON = "in_person", _("In person")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="events")
    # The event's discussion thread, made with the event.
    thread = models.OneToOneField(
        Thread, null=True, blank=True, on_delete=models.SET_NULL, related_name="event"
    )
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    html = models.TextField(blank=True)
    format = models.CharField(max_length=10, choices=Format.choices, default=Format.ONLINE)
    # In person: the address. Online: the join link, shown only to members who are going.
    location = models.CharField(_("place"), max_length=300, blank=True)
    url = models.URLField(_("link to join"), max_length=500, blank=True)
    starts_at = models.DateTimeField(_("starts"))
    ends_at = models.DateTimeField(_("ends"))
    timezone = models.CharField(_("time zone"), max_length=64, default="UTC")
    capacity = models.PositiveIntegerField(_("places"), null=True, blank=True)
    # Who set the event up; kept while they exist (the workspace's deletion takes all).
    created_by = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "starts_at"], name="event_ws_start")]

    def __str__(self) -> str:
        return self.title


class Rsvp(models.Model):
    class Status(models.TextChoices):
        GOING = "going", _("Going")
        WAITLIST = "waitlist", _("On the waitlist")
        NOT_GOING = "not_going", _("Not going")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="rsvps")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices)
    # Waitlist order: the earliest waiting member gets the next free place.
    waiting_since = models.DateTimeField(null=True, blank=True)
    checked_in_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "member"], name="uniq_rsvp"),
        ]
        indexes = [models.Index(fields=["event", "status"], name="rsvp_event_status")]
