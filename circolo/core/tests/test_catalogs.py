"""Every user-facing string is translated into Italian, Spanish and Simplified Chinese."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

from circolo.core.catalogs import catalog_gaps

LANGS = ("it", "es", "zh_Hans")
ROOT = Path(settings.BASE_DIR)


def test_committed_catalogs_have_no_gaps() -> None:
    assert catalog_gaps(settings.LOCALE_PATHS) == []
    for lang in LANGS:
        assert (ROOT / "circolo" / "locale" / lang / "LC_MESSAGES" / "django.po").exists(), lang


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="needs GNU gettext's xgettext")
def test_every_source_string_is_in_every_catalog(tmp_path: Path) -> None:
    """Extract the strings from the code as makemessages would and find each one translated."""
    # makemessages writes into any "locale" folder it walks past: extract from a copy without one.
    source = tmp_path / "src"
    shutil.copytree(
        ROOT / "circolo", source, ignore=shutil.ignore_patterns("locale", "__pycache__")
    )
    out = tmp_path / "locale"
    cwd = os.getcwd()
    os.chdir(source)
    try:
        with override_settings(LOCALE_PATHS=[str(out)]):
            call_command("makemessages", locale=["it"], verbosity=0, no_location=True)
    finally:
        os.chdir(cwd)
    extracted = {e.msgid for e in polib.pofile(str(out / "it" / "LC_MESSAGES" / "django.po"))}
    assert extracted, "no strings extracted: the check would prove nothing"
    for lang in LANGS:
        po = polib.pofile(str(ROOT / "circolo" / "locale" / lang / "LC_MESSAGES" / "django.po"))
        translated = {e.msgid for e in po if e.translated() and not e.obsolete}
        missing = sorted(extracted - translated)
        assert not missing, f"{lang}: {len(missing)} untranslated, e.g. {missing[:10]}"
