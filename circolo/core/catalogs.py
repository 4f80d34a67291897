"""Translation catalogs: compiled from .po with polib, so a fresh machine needs no gettext tools."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import polib


def compile_catalogs(locale_paths: Iterable[str | Path]) -> list[Path]:
    """Write an .mo next to every .po that is newer than it; return the files written."""
    built: list[Path] = []
    for base in locale_paths:
        for po_path in sorted(Path(base).glob("*/LC_MESSAGES/*.po")):
            mo_path = po_path.with_suffix(".mo")
            if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
                continue
            polib.pofile(str(po_path)).save_as_mofile(str(mo_path))
            built.append(mo_path)
    return built


def catalog_gaps(locale_paths: Iterable[str | Path]) -> list[str]:
    """Every untranslated or fuzzy entry, as 'lang: msgid'."""
    gaps: list[str] = []
    for base in locale_paths:
        for po_path in sorted(Path(base).glob("*/LC_MESSAGES/*.po")):
            lang = po_path.parent.parent.name
            for entry in polib.pofile(str(po_path)):
                if entry.obsolete:
                    continue
                if entry.fuzzy or not (entry.msgstr or any(entry.msgstr_plural.values())):
                    gaps.append(f"{lang}: {entry.msgid}")
    return gaps
