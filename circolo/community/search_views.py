"""The community's search page: /c/<workspace>/search/?q=...&space=&tag=&solved=&author=
&after=&before=&page= . Thin: parse the query string, call search.search_posts, render."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from .search import SearchFilters, SearchPage, search_filters_parse, search_posts
from .selectors import readable_spaces
from .services import CommunityError
from .views import _viewer, _workspace


def _page_number(raw: str | None) -> int:
    if not raw:
        return 1
    try:
        number = int(raw)
    except ValueError:
        number = 0
    if number < 1:
        raise CommunityError("page", _("A page is a whole number from 1."))
    return number


def search_view(request: HttpRequest, slug: str) -> HttpResponse:
    workspace = _workspace(slug)
    viewer = _viewer(request, workspace)
    spaces = readable_spaces(workspace.pk, viewer)
    query = request.GET.get("q", "").strip()
    errors: dict[str, str] = {}
    filters = SearchFilters()
    page: SearchPage | None = None
    try:
        filters = search_filters_parse(request.GET)
        number = _page_number(request.GET.get("page"))
        page = search_posts(
            workspace_id=workspace.pk,
            viewer=viewer,
            query=query,
            filters=filters,
            page=number,
            spaces=spaces,
        )
    except CommunityError as error:
        errors[error.field or "q"] = error.message
    return render(
        request,
        "community/search.html",
        {
            "community": workspace,
            "viewer": viewer,
            "spaces": spaces,
            "query": query,
            "filters": filters,
            "raw": request.GET,
            "page": page,
            "searched": page is not None and not page.empty_query,
            "errors": errors,
        },
        status=400 if errors else 200,
    )
