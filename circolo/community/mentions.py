"""@mentions in posts: which handles a text names (outside code and quotes)."""

from __future__ import annotations

import re

from .profiles import HANDLE_PATTERN

# "@" at the start or after a non-word character (so e-mail addresses are not mentions).
MENTION_RE = re.compile(rf"(?<![\w@/])@({HANDLE_PATTERN})")
_CODE_RE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)
_QUOTE_LINE_RE = re.compile(r"^\s*>.*$", re.MULTILINE)


def mentioned_handles(text: str) -> list[str]:
    """The distinct handles mentioned in a post's Markdown, in order, lower-cased; text in
    code and in quoted lines does not mention anyone."""
    visible = _QUOTE_LINE_RE.sub("", _CODE_RE.sub("", text))
    return list(dict.fromkeys(match.lower() for match in MENTION_RE.findall(visible)))
