from __future__ import annotations

from typing import TYPE_CHECKING

from django import forms
from django.utils.translation import gettext_lazy as _

from .markdown import POST_MAX_CHARS
from .models import Thread
from .models.forum import ContentKind

if TYPE_CHECKING:
    from .polls import PollArgs

IMAGE_TYPES = "image/jpeg,image/png,image/webp,image/gif"


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class ThreadForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("Kind"), choices=Thread.Kind.choices, initial=Thread.Kind.QUESTION
    )
    title = forms.CharField(label=_("Title"), max_length=200)
    body = forms.CharField(
        label=_("Your post"),
        widget=forms.Textarea(attrs={"rows": 8}),
        max_length=POST_MAX_CHARS,
        help_text=_("Markdown: **bold**, _italic_, [link](https://…), > quote, - list."),
    )
    image = forms.FileField(
        label=_("Add an image"),
        required=False,
        help_text=_("JPEG, PNG, WebP or GIF; it is resized and its metadata removed."),
        widget=forms.ClearableFileInput(attrs={"accept": IMAGE_TYPES}),
    )
    tags = forms.CharField(
        label=_("Tags"), required=False, help_text=_("Separated by commas, at most 5.")
    )
    skus = forms.CharField(
        label=_("Products (SKU)"),
        required=False,
        help_text=_("The products the thread is about, separated by commas."),
    )
    # Shown to the team only: what the thread offers, for the content calendar.
    content_kind = forms.ChoiceField(
        label=_("Content"), choices=[("", "—"), *ContentKind.choices], required=False
    )

    def tag_list(self) -> list[str]:
        return _split(self.cleaned_data.get("tags", ""))

    def sku_list(self) -> list[str]:
        return _split(self.cleaned_data.get("skus", ""))


class ReplyForm(forms.Form):
    body = forms.CharField(
        label=_("Your reply"),
        widget=forms.Textarea(attrs={"rows": 5}),
        max_length=POST_MAX_CHARS,
    )
    image = forms.FileField(
        label=_("Add an image"),
        required=False,
        help_text=_("JPEG, PNG, WebP or GIF; it is resized and its metadata removed."),
        widget=forms.ClearableFileInput(attrs={"accept": IMAGE_TYPES}),
    )


class SpaceForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120)
    slug = forms.SlugField(
        label=_("Address"),
        max_length=60,
        required=False,
        help_text=_("Letters, digits and hyphens; made from the name when empty."),
    )
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    guidelines = forms.CharField(
        label=_("Guidelines"), required=False, widget=forms.Textarea(attrs={"rows": 4})
    )
    language = forms.ChoiceField(label=_("Language"), required=False)
    visibility = forms.ChoiceField(label=_("Who can read"))
    segment_tags = forms.CharField(
        label=_("Segment: member tags"),
        required=False,
        help_text=_("For a segment space: members with any of these tags, separated by commas."),
    )
    segment_skus = forms.CharField(
        label=_("Segment: products bought (SKU)"),
        required=False,
        help_text=_("For a segment space: members who bought any of these products."),
    )
    parent = forms.TypedChoiceField(
        label=_("Inside the space"), required=False, coerce=int, empty_value=None
    )

    def __init__(self, *args: object, parents: list[tuple[int, str]], **kwargs: object) -> None:
        from django.conf import settings

        from .models import Space

        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        language_field = self.fields["language"]
        visibility_field = self.fields["visibility"]
        parent_field = self.fields["parent"]
        assert isinstance(language_field, forms.ChoiceField)
        assert isinstance(visibility_field, forms.ChoiceField)
        assert isinstance(parent_field, forms.ChoiceField)
        language_field.choices = [("", _("Any language")), *settings.LANGUAGES]
        visibility_field.choices = Space.Visibility.choices
        parent_field.choices = [("", _("None: a top-level space")), *parents]

    def segment(self) -> dict[str, list[str]]:
        return {
            "tags": _split(self.cleaned_data.get("segment_tags", "")),
            "skus": _split(self.cleaned_data.get("segment_skus", "")),
        }


class LocalDateTimeField(forms.Field):
    """A wall-clock date and time with no zone (the zone is given separately): a naive
    datetime, read from a datetime-local input or typed as "2025-06-01 18:30"."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")

    def to_python(self, value: object) -> object:
        import datetime as dt

        if isinstance(value, dt.datetime):
            return value
        text = str(value or "").strip()
        if not text:
            return None
        try:
            parsed = dt.datetime.fromisoformat(text.replace(" ", "T", 1))
        except ValueError:
            raise forms.ValidationError(
                _("Enter a date and a time, for example 2025-06-01 18:30.")
            ) from None
        if parsed.tzinfo is not None:
            raise forms.ValidationError(_("Give the time without a zone: the zone is separate."))
        return parsed.replace(second=0, microsecond=0)


class EventForm(forms.Form):
    space = forms.TypedChoiceField(label=_("Space"), coerce=int)
    title = forms.CharField(label=_("Title"), max_length=200)
    description = forms.CharField(
        label=_("Description"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        max_length=POST_MAX_CHARS,
        help_text=_("Markdown. It also opens the event's discussion thread."),
    )
    format = forms.ChoiceField(label=_("Where"))
    location = forms.CharField(
        label=_("Place"),
        required=False,
        max_length=300,
        help_text=_("For an event in person: the address."),
    )
    url = forms.CharField(
        label=_("Link to join"),
        required=False,
        max_length=500,
        help_text=_("For an online event: shown only to members who are going, and to the team."),
    )
    starts_at = LocalDateTimeField(label=_("Starts"))
    ends_at = LocalDateTimeField(label=_("Ends"))
    timezone = forms.CharField(
        label=_("Time zone"),
        max_length=64,
        help_text=_("Where the event is held, e.g. Europe/Rome: start and end are in this zone."),
    )
    capacity = forms.IntegerField(
        label=_("Places"),
        required=False,
        min_value=1,
        help_text=_("Empty for no limit; when full, members join a waitlist."),
    )

    def __init__(self, *args: object, spaces: list[tuple[int, str]], **kwargs: object) -> None:
        from .models import Event

        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        space_field = self.fields["space"]
        format_field = self.fields["format"]
        assert isinstance(space_field, forms.ChoiceField)
        assert isinstance(format_field, forms.ChoiceField)
        space_field.choices = spaces
        format_field.choices = Event.Format.choices


class PollForm(forms.Form):
    """The optional poll on the new-thread form: it is made when a question is given."""

    poll_question = forms.CharField(label=_("Poll question"), max_length=200, required=False)
    poll_options = forms.CharField(
        label=_("Options"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("One per line: 2 to 20 options, each up to 120 characters."),
    )
    poll_multiple = forms.BooleanField(label=_("Several answers allowed"), required=False)
    poll_max_choices = forms.IntegerField(
        label=_("At most this many answers"),
        required=False,
        min_value=1,
        max_value=20,
        help_text=_("With several answers allowed; empty for no limit."),
    )
    poll_closes_at = LocalDateTimeField(
        label=_("Closes"), required=False, help_text=_("Optional; in the community's time zone.")
    )
    poll_results = forms.ChoiceField(label=_("Show the results"), required=False)

    def __init__(self, *args: object, **kwargs: object) -> None:
        from .models import Poll

        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        results_field = self.fields["poll_results"]
        assert isinstance(results_field, forms.ChoiceField)
        results_field.choices = Poll.Results.choices
        results_field.initial = Poll.Results.VOTED

    def wanted(self) -> bool:
        data = self.cleaned_data
        return bool(data.get("poll_question") or data.get("poll_options", "").strip())

    def checked(self, time_zone: str) -> PollArgs | None:
        """The poll to make with the thread (None: no poll asked for); CommunityError names
        the field when the poll is not right."""
        from .polls import poll_check

        return poll_check(**self.poll_kwargs(time_zone)) if self.wanted() else None

    def poll_kwargs(self, time_zone: str) -> PollArgs:
        """Arguments of polls.poll_create; the closing time is read in `time_zone`."""
        import zoneinfo

        from .polls import poll_options_parse

        data = self.cleaned_data
        closes_at = data.get("poll_closes_at")
        if closes_at is not None:
            try:
                zone = zoneinfo.ZoneInfo(time_zone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                zone = zoneinfo.ZoneInfo("UTC")
            closes_at = closes_at.replace(tzinfo=zone)
        return {
            "question": data.get("poll_question", ""),
            "options": poll_options_parse(data.get("poll_options", "")),
            "multiple": bool(data.get("poll_multiple")),
            "max_choices": data.get("poll_max_choices"),
            "closes_at": closes_at,
            "results": data.get("poll_results") or "voted",
        }
