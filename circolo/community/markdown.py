"""Posts are written in Markdown and shown as HTML that can hold nothing unsafe.

Two independent layers: markdown-it renders with raw HTML switched off (any `<tag>` the
author types comes out as text) and refuses javascript:/data: links; then nh3 (the ammonia
sanitiser) keeps only an allow-list of tags, attributes and URL schemes, and sets `rel` on
every link, with `nofollow` for authors the community does not trust yet.
"""

from __future__ import annotations

from html import unescape

import nh3
from markdown_it import MarkdownIt

POST_MAX_CHARS = 20_000

_renderer = (
    MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    .enable("table")
    .enable("strikethrough")
)

ALLOWED_TAGS = frozenset(
    {
        "p", "br", "hr", "strong", "em", "del", "s", "code", "pre", "blockquote",
        "ul", "ol", "li", "a", "img", "h1", "h2", "h3", "h4", "h5", "h6",
        "table", "thead", "tbody", "tr", "th", "td",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
    "th": {"align"},
    "td": {"align"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
REL_TRUSTED = "ugc noopener noreferrer"
REL_NEW = "nofollow ugc noopener noreferrer"


def render(body: str, *, trusted: bool) -> str:
    """Safe HTML for a post's Markdown. `trusted`: the author's links may pass on reputation
    (no nofollow); new members' links always carry nofollow."""
    html = _renderer.render(body)
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel=REL_TRUSTED if trusted else REL_NEW,
        strip_comments=True,
    )


def excerpt(body: str, length: int = 200) -> str:
    """Plain text of a post's beginning, for lists and notifications."""
    text = unescape(nh3.clean(_renderer.render(body), tags=set())).strip()
    text = " ".join(text.split())
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"


def links_and_images(body: str) -> tuple[list[str], int]:
    """The absolute links a post's Markdown makes (http, https) and how many images it shows,
    read from the same tokens the page is rendered from (a bare URL is not a link)."""
    links: list[str] = []
    images = 0
    for token in _renderer.parse(body):
        for child in token.children or ():
            if child.type == "image":
                images += 1
            elif child.type == "link_open":
                href = str(child.attrGet("href") or "")
                if href.lower().startswith(("http://", "https://")):
                    links.append(href)
    return links, images
