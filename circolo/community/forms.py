from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .markdown import POST_MAX_CHARS
from .models import Thread


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
