from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .markdown import POST_MAX_CHARS
from .models import Thread

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
        widget=forms.ClearableFileInput(
            attrs={"accept": "image/jpeg,image/png,image/webp,image/gif"}
        ),
    )
    tags = forms.CharField(
        label=_("Tags"), required=False, help_text=_("Separated by commas, at most 5.")
    )
    skus = forms.CharField(
        label=_("Products (SKU)"),
        required=False,
        help_text=_("The products the thread is about, separated by commas."),
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
        widget=forms.ClearableFileInput(
            attrs={"accept": "image/jpeg,image/png,image/webp,image/gif"}
        ),
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
