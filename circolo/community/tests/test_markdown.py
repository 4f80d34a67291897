"""Post rendering: Markdown comes out as formatted HTML, and no known cross-site scripting
payload survives as something a browser would run."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from circolo.community.markdown import excerpt, render

# Known payloads (typed raw, as Markdown links and images, encoded, split across syntax).
XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    "<iframe src='javascript:alert(1)'></iframe>",
    "<a href='javascript:alert(1)'>x</a>",
    "<body onload=alert(1)>",
    "<div style='background:url(javascript:alert(1))'>x</div>",
    "<math><mi xlink:href='javascript:alert(1)'>x</mi></math>",
    "<object data='data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=='></object>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](javascript&colon;alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click](vbscript:msgbox(1))",
    "![x](javascript:alert(1))",
    '![x](https://example.com/a.png" onerror="alert(1))',
    '[x](https://example.com "title" onmouseover="alert(1)")',
    "<<script>script>alert(1)<</script>/script>",
    "`<script>alert(1)</script>`",
    "```html\n<script>alert(1)</script>\n```",
    "<details open ontoggle=alert(1)>",
    "<form action=javascript:alert(1)><input type=submit>",
    "<meta http-equiv='refresh' content='0;url=javascript:alert(1)'>",
    "<base href='javascript:alert(1)//'>",
    "[a](<javascript:alert(1)>)",
    '<a href="&#x6A;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;:alert(1)">x</a>',
    "<scr<script>ipt>alert(1)</script>",
    "\u003cscript\u003ealert(1)\u003c/script\u003e",
    "<style>@import 'javascript:alert(1)';</style>",
]

SAFE_TAGS = {
    "p", "br", "hr", "strong", "em", "del", "s", "code", "pre", "blockquote", "ul", "ol",
    "li", "a", "img", "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr",
    "th", "td",
}  # fmt: skip
SAFE_SCHEMES = ("http:", "https:", "mailto:")


class _Elements(HTMLParser):
    """Every element and attribute as a browser would parse them (entities decoded)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


def dangers(html: str) -> list[str]:
    parser = _Elements()
    parser.feed(html)
    problems = []
    for tag, attrs in parser.found:
        if tag not in SAFE_TAGS:
            problems.append(f"tag {tag}")
        for name, value in attrs:
            if name.startswith("on") or name in {"style", "srcdoc", "formaction"}:
                problems.append(f"attribute {name} on {tag}")
            if name in {"href", "src"}:
                url = re.sub(r"[\x00-\x20]", "", value or "").lower()
                if ":" in url.split("/")[0] and not url.startswith(SAFE_SCHEMES):
                    problems.append(f"{name}={value!r} on {tag}")
    return problems


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
@pytest.mark.parametrize("trusted", [False, True])
def test_no_xss_payload_survives(payload: str, trusted: bool) -> None:
    html = render(payload, trusted=trusted)
    assert dangers(html) == [], html


def test_the_checker_itself_finds_dangers() -> None:
    assert dangers('<img src="x" onerror="alert(1)">') == ["attribute onerror on img"]
    assert dangers('<a href="&#106;avascript:alert(1)">x</a>') != []
    assert dangers("<script>alert(1)</script>") == ["tag script"]


def test_markdown_formats_and_links_carry_rel() -> None:
    body = "**Bold** and _it_\n\n> quoted\n\n- a\n- b\n\n[shop](https://example.com/x)"
    html = render(body, trusted=False)
    assert "<strong>Bold</strong>" in html and "<em>it</em>" in html
    assert "<blockquote>" in html and "<li>a</li>" in html
    assert 'href="https://example.com/x"' in html
    assert 'rel="nofollow ugc noopener noreferrer"' in html
    assert "nofollow" not in render(body, trusted=True)


def test_typed_html_is_shown_as_text() -> None:
    html = render("I love <b>bold</b> & <i>this</i>", trusted=False)
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "<b>" not in html


def test_excerpt_is_plain_text() -> None:
    assert excerpt("**Ciao** a tutti, <script>x</script> [link](https://e.com)") == (
        "Ciao a tutti, <script>x</script> link"
    )
    assert excerpt("word " * 100, length=20).endswith("…")
