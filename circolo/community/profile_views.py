"""Member profiles in the community, and a product's page listing the threads about it.

A profile shows only what the viewer may read: posts and answers in spaces open to them,
events of those spaces, and the products the member owns only if the member allows it.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from circolo.commerce.selectors import member_bought_products, product_for_sku
from circolo.loyalty.badges import member_badges

from .follows import is_following
from .models import CommunityProfile, Post, Rsvp
from .profiles import BIO_MAX, ProfileError, profile_ensure, profile_update
from .selectors import member_is_staff, readable_spaces, readable_threads
from .views import _viewer, _workspace

PROFILE_POSTS = 20
PRODUCT_THREADS = 50


class ProfileForm(forms.Form):
    handle = forms.CharField(
        label=_("Handle"),
        max_length=40,
        help_text=_("What others type after @ to mention you."),
    )
    bio = forms.CharField(
        label=_("About me"), required=False, max_length=BIO_MAX, widget=forms.Textarea
    )
    show_products = forms.BooleanField(
        label=_("Show the products I own on my profile"), required=False
    )


def profile_view(request: HttpRequest, slug: str, handle: str) -> HttpResponse:
    workspace = _workspace(slug)
    viewer = _viewer(request, workspace)
    profile = (
        CommunityProfile.objects.filter(workspace=workspace, handle__iexact=handle)
        .select_related("member")
        .first()
    )
    if profile is None or profile.member.merged_into_id is not None:
        raise Http404
    member = profile.member
    if member.erased_at is not None:
        raise Http404
    threads = readable_threads(workspace.pk, viewer)
    posts = list(
        Post.objects.filter(author=member, thread__in=threads, hidden_at__isnull=True)
        .select_related("thread", "thread__space")
        .order_by("-created_at")[:PROFILE_POSTS]
    )
    answers = list(
        threads.filter(accepted_post__author=member)
        .select_related("space")
        .order_by("-last_posted_at")[:PROFILE_POSTS]
    )
    post_count = Post.objects.filter(
        author=member, thread__in=threads, hidden_at__isnull=True
    ).count()
    events = list(
        Rsvp.objects.filter(
            member=member,
            checked_in_at__isnull=False,
            event__space__in=readable_spaces(workspace.pk, viewer),
        )
        .select_related("event")
        .order_by("-event__starts_at")[:PROFILE_POSTS]
    )
    own = viewer is not None and viewer.pk == member.pk
    products = member_bought_products(member=member) if (profile.show_products or own) else []
    language = get_language() or "en"
    return render(
        request,
        "community/profile.html",
        {
            "community": workspace,
            "viewer": viewer,
            "profile": profile,
            "person": member,
            "staff": member_is_staff(member),
            "posts": posts,
            "post_count": post_count,
            "answers": answers,
            "events": events,
            "products": [
                {"title": item.product.title_in(language), "url": item.product.url}
                for item in products
            ],
            "own": own,
            "following": not own and is_following(viewer, followed=member),
            "badges": member_badges(member=member, language=language),
        },
    )


def profile_edit(request: HttpRequest, slug: str) -> HttpResponse:
    workspace = _workspace(slug)
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    viewer = _viewer(request, workspace)
    assert viewer is not None
    profile = profile_ensure(viewer)
    form = ProfileForm(
        request.POST or None,
        initial={
            "handle": profile.handle,
            "bio": profile.bio,
            "show_products": profile.show_products,
        },
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                profile = profile_update(
                    member=viewer,
                    handle=form.cleaned_data["handle"],
                    bio=form.cleaned_data["bio"],
                    show_products=form.cleaned_data["show_products"],
                )
            except ProfileError as error:
                form.add_error(error.field, error.message)
            else:
                messages.success(request, _("Your profile is saved."))
                return redirect("community:profile", slug=slug, handle=profile.handle)
        status = 400
    return render(
        request,
        "community/profile_edit.html",
        {"community": workspace, "viewer": viewer, "form": form, "profile": profile},
        status=status,
    )


def product_threads(request: HttpRequest, slug: str, sku: str) -> HttpResponse:
    """The threads about a product (by any of its SKUs) that the viewer may read."""
    workspace = _workspace(slug)
    viewer = _viewer(request, workspace)
    found = product_for_sku(workspace_id=workspace.pk, sku=sku)
    skus = found.skus if found is not None else (sku,)
    # Thread.skus is a JSON list; matching its text for the quoted SKU works on both
    # databases (SQLite has no JSON containment lookup).
    about = Q()
    for each in skus:
        about |= Q(skus__icontains=f'"{each}"')
    threads = list(
        readable_threads(workspace.pk, viewer)
        .filter(about)
        .select_related("space", "author")
        .order_by("-last_posted_at")[:PRODUCT_THREADS]
    )
    threads = [thread for thread in threads if set(thread.skus) & set(skus)]
    if found is None and not threads:
        raise Http404
    language = get_language() or "en"
    return render(
        request,
        "community/product.html",
        {
            "community": workspace,
            "viewer": viewer,
            "sku": sku,
            "title": found.product.title_in(language) if found else sku,
            "url": found.product.url if found else "",
            "image": found.product.image_url if found else "",
            "threads": threads,
        },
    )
